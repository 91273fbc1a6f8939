"""ComfyUI's `comfy.comfy_types.node_typing`: the type hints of classic node classes.

`IO` names the socket types. Its `!=` is ComfyUI's type-compatibility test, which the front end
and validation use: "*" matches everything, and comma-separated unions match when one contains
the other ("FLOAT,INT" != "INT" is False).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from enum import Enum
from typing import Literal, TypedDict

from typing_extensions import NotRequired


class StrEnum(str, Enum):
    """A str-valued enum whose str() is its value."""

    def __str__(self) -> str:
        return self.value


class IO(StrEnum):
    """Node input/output types, with "*" (ANY) and "A,B" unions."""

    STRING = "STRING"
    IMAGE = "IMAGE"
    MASK = "MASK"
    LATENT = "LATENT"
    BOOLEAN = "BOOLEAN"
    INT = "INT"
    FLOAT = "FLOAT"
    COMBO = "COMBO"
    CONDITIONING = "CONDITIONING"
    SAMPLER = "SAMPLER"
    SIGMAS = "SIGMAS"
    GUIDER = "GUIDER"
    NOISE = "NOISE"
    CLIP = "CLIP"
    CONTROL_NET = "CONTROL_NET"
    VAE = "VAE"
    MODEL = "MODEL"
    LORA_MODEL = "LORA_MODEL"
    LOSS_MAP = "LOSS_MAP"
    CLIP_VISION = "CLIP_VISION"
    CLIP_VISION_OUTPUT = "CLIP_VISION_OUTPUT"
    STYLE_MODEL = "STYLE_MODEL"
    GLIGEN = "GLIGEN"
    UPSCALE_MODEL = "UPSCALE_MODEL"
    AUDIO = "AUDIO"
    WEBCAM = "WEBCAM"
    POINT = "POINT"
    FACE_ANALYSIS = "FACE_ANALYSIS"
    BBOX = "BBOX"
    SEGS = "SEGS"
    VIDEO = "VIDEO"

    ANY = "*"
    NUMBER = "FLOAT,INT"
    PRIMITIVE = "STRING,FLOAT,INT,BOOLEAN"

    def __ne__(self, value: object) -> bool:
        if self == "*" or value == "*":
            return False
        if not isinstance(value, str):
            return True
        ours, theirs = frozenset(self.split(",")), frozenset(value.split(","))
        return not (theirs <= ours or ours <= theirs)



class RemoteInputOptions(TypedDict):
    route: str
    refresh_button: bool
    control_after_refresh: Literal["first", "last"]
    timeout: int
    max_retries: int
    refresh: int


class MultiSelectOptions(TypedDict):
    placeholder: NotRequired[str]
    chip: NotRequired[bool]


class InputTypeOptions(TypedDict):
    """The options of one INPUT_TYPES entry (every option of every type, as ComfyUI hints them)."""

    default: bool | str | float | int | list | tuple
    defaultInput: bool
    forceInput: bool
    lazy: bool
    rawLink: bool
    tooltip: str
    min: float
    max: float
    step: float
    round: float
    label_on: str
    label_off: str
    multiline: bool
    placeholder: str
    dynamicPrompts: bool
    image_upload: bool
    image_folder: Literal["input", "output", "temp"]
    remote: RemoteInputOptions
    control_after_generate: bool
    options: NotRequired[list[str | int | float]]
    multi_select: NotRequired[MultiSelectOptions]


class HiddenInputTypeDict(TypedDict):
    node_id: Literal["UNIQUE_ID"]
    unique_id: Literal["UNIQUE_ID"]
    prompt: Literal["PROMPT"]
    extra_pnginfo: Literal["EXTRA_PNGINFO"]
    dynprompt: Literal["DYNPROMPT"]


class InputTypeDict(TypedDict):
    """What INPUT_TYPES returns."""

    required: dict[str, tuple[IO, InputTypeOptions]]
    optional: dict[str, tuple[IO, InputTypeOptions]]
    hidden: HiddenInputTypeDict


class ComfyNodeABC(ABC):
    """A classic node class: the attributes ComfyUI reads, and INPUT_TYPES to implement."""

    DESCRIPTION: str
    CATEGORY: str
    EXPERIMENTAL: bool
    DEPRECATED: bool
    OUTPUT_NODE: bool
    INPUT_IS_LIST: bool
    OUTPUT_IS_LIST: tuple[bool, ...]
    RETURN_TYPES: tuple[IO, ...]
    RETURN_NAMES: tuple[str, ...]
    OUTPUT_TOOLTIPS: tuple[str, ...]
    FUNCTION: str

    @classmethod
    @abstractmethod
    def INPUT_TYPES(s) -> InputTypeDict:  # noqa: N802, N805 - ComfyUI's names
        """The node's inputs: "required", optional "optional" and "hidden"."""
        return {"required": {}}


class CheckLazyMixin:
    """check_lazy_status asking for every lazy input not evaluated yet (those given as None)."""

    def check_lazy_status(self, **kwargs: object) -> list[str]:
        return [name for name, value in kwargs.items() if value is None]


class FileLocator(TypedDict, total=False):
    """Where a file is: its name, subfolder, and root folder type."""

    filename: str
    subfolder: str
    type: Literal["input", "output", "temp"]
