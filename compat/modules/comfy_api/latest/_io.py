"""ComfyUI's V3 node schema, `comfy_api.latest.io`: IO types with their Input/Output, Schema, ComfyNode, NodeOutput.

Names, signatures and the catalogue rendering (`as_dict`, `Schema.get_v1_info`) follow ComfyUI,
so `GET /object_info` shows a V3 node as ComfyUI does. Nothing here runs a node: Sigmagraph's
adapter (`sigmagraph.compat.v3`) turns a ComfyNode class into a NodeSpec. Not provided (no pack
uses them): API-node price badges, rich remote combos, DynamicSlot, DynamicGroup, node
replacement, the widget types of ComfyUI's own editors (curves, colours, 3D, video edits).
"""

from __future__ import annotations

import copy
import inspect
from collections import Counter
from dataclasses import asdict, dataclass, field
from enum import Enum
from typing import Any, Literal

from comfy_api.internal import (_ComfyNodeInternal, _NodeOutputInternal, classproperty, first_real_override,
                                prune_dict)


class FolderType(str, Enum):
    input = "input"
    output = "output"
    temp = "temp"


class UploadType(str, Enum):
    image = "image_upload"
    audio = "audio_upload"
    video = "video_upload"
    model = "file_upload"


class NumberDisplay(str, Enum):
    number = "number"
    slider = "slider"
    gradient_slider = "gradientslider"


class ControlAfterGenerate(str, Enum):
    fixed = "fixed"
    increment = "increment"
    decrement = "decrement"
    randomize = "randomize"


class RemoteOptions:
    """A combo whose choices the front end fetches from a route of the server."""

    def __init__(self, route: str, refresh_button: bool, control_after_refresh: Literal["first", "last"] = "first",
                 timeout: int | None = None, max_retries: int | None = None, refresh: int | None = None):
        self.route, self.refresh_button, self.control_after_refresh = route, refresh_button, control_after_refresh
        self.timeout, self.max_retries, self.refresh = timeout, max_retries, refresh

    def as_dict(self) -> dict:
        return prune_dict({"route": self.route, "refresh_button": self.refresh_button,
                           "control_after_refresh": self.control_after_refresh, "timeout": self.timeout,
                           "max_retries": self.max_retries, "refresh": self.refresh})


class _ComfyType:
    Type = Any
    io_type: str = None


def comfytype(io_type: str, **kwargs: Any):
    """Binds `io_type` to a ComfyType class and gives it Input/Output classes of its own (their `Parent`)."""

    def decorate(cls: type) -> type:
        if not issubclass(cls, _ComfyType):
            cls = type(cls.__name__, (cls, ComfyTypeIO), {"__module__": cls.__module__, "__doc__": cls.__doc__})
        cls.io_type = io_type
        for part in ("Input", "Output"):
            inner = getattr(cls, part, None)
            if inner is not None:
                setattr(cls, part, type(inner.__name__, (inner,), {"Parent": cls, "__module__": cls.__module__,
                                                                   "__qualname__": f"{cls.__qualname__}.{part}"}))
        return cls

    return decorate


def Custom(io_type: str) -> type[ComfyTypeIO]:  # noqa: N802 - ComfyUI's name
    """A ComfyType for a pack's own socket type."""
    return comfytype(io_type)(type("CustomComfyType", (ComfyTypeIO,), {"__module__": __name__}))


class _IO_V3:  # noqa: N801 - ComfyUI's name
    Parent: type[_ComfyType] = None

    def validate(self) -> None:
        """Checks the declaration; the base accepts anything."""

    @property
    def io_type(self) -> str:
        return self.Parent.io_type

    @property
    def Type(self) -> Any:  # noqa: N802
        return self.Parent.Type


class Input(_IO_V3):
    """An input that takes a link (the base of every V3 input)."""

    def __init__(self, id: str, display_name: str | None = None, optional: bool = False, tooltip: str | None = None,
                 lazy: bool | None = None, extra_dict: dict | None = None, raw_link: bool | None = None,
                 advanced: bool | None = None):
        self.id, self.display_name, self.optional, self.tooltip, self.lazy = id, display_name, optional, tooltip, lazy
        self.extra_dict = extra_dict if extra_dict is not None else {}
        self.rawLink, self.advanced = raw_link, advanced

    def as_dict(self) -> dict:
        return prune_dict({"display_name": self.display_name, "optional": self.optional, "tooltip": self.tooltip,
                           "lazy": self.lazy, "rawLink": self.rawLink, "advanced": self.advanced}) \
            | prune_dict(self.extra_dict)

    def get_io_type(self) -> str:
        return self.io_type

    def get_all(self) -> list[Input]:
        return [self]


class WidgetInput(Input):
    """An input with a widget for a literal value."""

    def __init__(self, id: str, display_name: str | None = None, optional: bool = False, tooltip: str | None = None,
                 lazy: bool | None = None, default: Any = None, socketless: bool | None = None,
                 widget_type: str | None = None, force_input: bool | None = None, extra_dict: dict | None = None,
                 raw_link: bool | None = None, advanced: bool | None = None):
        super().__init__(id, display_name, optional, tooltip, lazy, extra_dict, raw_link, advanced)
        self.default, self.socketless = default, socketless
        self.widget_type, self.force_input = widget_type, force_input

    def as_dict(self) -> dict:
        return super().as_dict() | prune_dict({"default": self.default, "socketless": self.socketless,
                                               "widgetType": self.widget_type, "forceInput": self.force_input})

    def get_io_type(self) -> str:
        return self.widget_type if self.widget_type is not None else super().get_io_type()


class Output(_IO_V3):
    def __init__(self, id: str | None = None, display_name: str | None = None, tooltip: str | None = None,
                 is_output_list: bool = False):
        self.id, self.display_name, self.tooltip, self.is_output_list = id, display_name or id, tooltip, is_output_list

    def as_dict(self) -> dict:
        return prune_dict({"display_name": self.display_name or self.id, "tooltip": self.tooltip,
                           "is_output_list": self.is_output_list})

    def get_io_type(self) -> str:
        return self.io_type


class ComfyTypeI(_ComfyType):
    """A type with inputs only."""

    class Input(Input):
        ...


class ComfyTypeIO(ComfyTypeI):
    """A type with inputs and outputs."""

    class Output(Output):
        ...


@comfytype(io_type="BOOLEAN")
class Boolean(ComfyTypeIO):
    Type = bool

    class Input(WidgetInput):
        def __init__(self, id: str, display_name: str | None = None, optional: bool = False,
                     tooltip: str | None = None, lazy: bool | None = None, default: bool | None = None,
                     label_on: str | None = None, label_off: str | None = None, socketless: bool | None = None,
                     force_input: bool | None = None, extra_dict: dict | None = None, raw_link: bool | None = None,
                     advanced: bool | None = None):
            super().__init__(id, display_name, optional, tooltip, lazy, default, socketless, None, force_input,
                             extra_dict, raw_link, advanced)
            self.label_on, self.label_off = label_on, label_off

        def as_dict(self) -> dict:
            return super().as_dict() | prune_dict({"label_on": self.label_on, "label_off": self.label_off})


@comfytype(io_type="INT")
class Int(ComfyTypeIO):
    Type = int

    class Input(WidgetInput):
        def __init__(self, id: str, display_name: str | None = None, optional: bool = False,
                     tooltip: str | None = None, lazy: bool | None = None, default: int | None = None,
                     min: int | None = None, max: int | None = None, step: int | None = None,
                     control_after_generate: bool | ControlAfterGenerate | None = None,
                     display_mode: NumberDisplay | None = None, socketless: bool | None = None,
                     force_input: bool | None = None, extra_dict: dict | None = None, raw_link: bool | None = None,
                     advanced: bool | None = None):
            super().__init__(id, display_name, optional, tooltip, lazy, default, socketless, None, force_input,
                             extra_dict, raw_link, advanced)
            self.min, self.max, self.step = min, max, step
            self.control_after_generate, self.display_mode = control_after_generate, display_mode

        def as_dict(self) -> dict:
            return super().as_dict() | prune_dict({
                "min": self.min, "max": self.max, "step": self.step,
                "control_after_generate": self.control_after_generate,
                "display": self.display_mode.value if self.display_mode else None})


@comfytype(io_type="FLOAT")
class Float(ComfyTypeIO):
    Type = float

    class Input(WidgetInput):
        def __init__(self, id: str, display_name: str | None = None, optional: bool = False,
                     tooltip: str | None = None, lazy: bool | None = None, default: float | None = None,
                     min: float | None = None, max: float | None = None, step: float | None = None,
                     round: float | bool | None = None, display_mode: NumberDisplay | None = None,
                     gradient_stops: list[dict] | None = None, socketless: bool | None = None,
                     force_input: bool | None = None, extra_dict: dict | None = None, raw_link: bool | None = None,
                     advanced: bool | None = None):
            super().__init__(id, display_name, optional, tooltip, lazy, default, socketless, None, force_input,
                             extra_dict, raw_link, advanced)
            self.min, self.max, self.step, self.round = min, max, step, round
            self.display_mode, self.gradient_stops = display_mode, gradient_stops

        def as_dict(self) -> dict:
            return super().as_dict() | prune_dict({
                "min": self.min, "max": self.max, "step": self.step, "round": self.round,
                "display": self.display_mode, "gradient_stops": self.gradient_stops})


@comfytype(io_type="STRING")
class String(ComfyTypeIO):
    Type = str

    class Input(WidgetInput):
        def __init__(self, id: str, display_name: str | None = None, optional: bool = False,
                     tooltip: str | None = None, lazy: bool | None = None, multiline: bool = False,
                     placeholder: str | None = None, default: str | None = None, dynamic_prompts: bool | None = None,
                     socketless: bool | None = None, force_input: bool | None = None, extra_dict: dict | None = None,
                     raw_link: bool | None = None, advanced: bool | None = None):
            super().__init__(id, display_name, optional, tooltip, lazy, default, socketless, None, force_input,
                             extra_dict, raw_link, advanced)
            self.multiline, self.placeholder, self.dynamic_prompts = multiline, placeholder, dynamic_prompts

        def as_dict(self) -> dict:
            return super().as_dict() | prune_dict({"multiline": self.multiline, "placeholder": self.placeholder,
                                                   "dynamicPrompts": self.dynamic_prompts})


def _plain(value: Any) -> Any:
    """An Enum member as its value (combo options and defaults may be given as members)."""
    return value.value if isinstance(value, Enum) else value


@comfytype(io_type="COMBO")
class Combo(ComfyTypeIO):
    Type = str

    class Input(WidgetInput):
        """A dropdown; `options` may be a list or an Enum class."""

        def __init__(self, id: str, options: list[str] | list[int] | type[Enum] | None = None,
                     display_name: str | None = None, optional: bool = False, tooltip: str | None = None,
                     lazy: bool | None = None, default: str | int | Enum | None = None,
                     control_after_generate: bool | ControlAfterGenerate | None = None,
                     upload: UploadType | None = None, image_folder: FolderType | None = None,
                     remote: RemoteOptions | None = None, socketless: bool | None = None,
                     extra_dict: dict | None = None, raw_link: bool | None = None, advanced: bool | None = None):
            if isinstance(options, type) and issubclass(options, Enum):
                options = list(options)
            super().__init__(id, display_name, optional, tooltip, lazy, _plain(default), socketless, None, None,
                             extra_dict, raw_link, advanced)
            self.multiselect = False
            self.options = None if options is None else [_plain(o) for o in options]
            self.control_after_generate, self.upload, self.image_folder = control_after_generate, upload, image_folder
            self.remote = remote

        def as_dict(self) -> dict:
            return super().as_dict() | prune_dict({
                "multiselect": self.multiselect, "options": self.options,
                "control_after_generate": self.control_after_generate,
                **({self.upload.value: True} if self.upload is not None else {}),
                "image_folder": self.image_folder.value if self.image_folder else None,
                "remote": self.remote.as_dict() if self.remote else None})

    class Output(Output):
        def __init__(self, id: str | None = None, display_name: str | None = None, options: list[str] | None = None,
                     tooltip: str | None = None, is_output_list: bool = False):
            super().__init__(id, display_name, tooltip, is_output_list)
            self.options = options if options is not None else []


@comfytype(io_type="COMBO")
class MultiCombo(ComfyTypeI):
    """A dropdown selecting several options (its value is a list)."""

    Type = list

    class Input(Combo.Input):
        def __init__(self, id: str, options: list[str], display_name: str | None = None, optional: bool = False,
                     tooltip: str | None = None, lazy: bool | None = None, default: list[str] | None = None,
                     placeholder: str | None = None, chip: bool | None = None,
                     control_after_generate: bool | ControlAfterGenerate | None = None,
                     socketless: bool | None = None, extra_dict: dict | None = None, raw_link: bool | None = None,
                     advanced: bool | None = None):
            super().__init__(id, options, display_name, optional, tooltip, lazy, default, control_after_generate,
                             socketless=socketless, extra_dict=extra_dict, raw_link=raw_link, advanced=advanced)
            self.multiselect, self.placeholder, self.chip = True, placeholder, chip

        def as_dict(self) -> dict:
            # The front end reads `multi_select` as an object; `multiselect` stays for older front ends.
            return super().as_dict() | {"multi_select": prune_dict({"placeholder": self.placeholder,
                                                                     "chip": self.chip})}


@comfytype(io_type="BOUNDING_BOX")
class BoundingBox(ComfyTypeIO):
    """A rectangle {x, y, width, height}, drawn in a widget or linked."""

    Type = dict

    class Input(WidgetInput):
        def __init__(self, id: str, display_name: str | None = None, optional: bool = False,
                     tooltip: str | None = None, socketless: bool = True, default: dict | None = None,
                     component: str | None = None, force_input: bool | None = None):
            super().__init__(id, display_name, optional, tooltip, None,
                             default if default is not None else {"x": 0, "y": 0, "width": 512, "height": 512},
                             socketless, None, force_input)
            self.component = component

        def as_dict(self) -> dict:
            return super().as_dict() | prune_dict({"component": self.component})


def _socket(name: str, io_type: str) -> type[ComfyTypeIO]:
    """A type whose values only flow along links, under ComfyUI's class name."""
    return comfytype(io_type)(type(name, (ComfyTypeIO,), {"__module__": __name__}))


Image = _socket("Image", "IMAGE")
Mask = _socket("Mask", "MASK")
Latent = _socket("Latent", "LATENT")
Conditioning = _socket("Conditioning", "CONDITIONING")
Sampler = _socket("Sampler", "SAMPLER")
Sigmas = _socket("Sigmas", "SIGMAS")
Noise = _socket("Noise", "NOISE")
Guider = _socket("Guider", "GUIDER")
Clip = _socket("Clip", "CLIP")
ControlNet = _socket("ControlNet", "CONTROL_NET")
Vae = _socket("Vae", "VAE")
Model = _socket("Model", "MODEL")
ModelPatch = MODEL_PATCH = _socket("ModelPatch", "MODEL_PATCH")  # MODEL_PATCH: ComfyUI's earlier name
ClipVision = _socket("ClipVision", "CLIP_VISION")
ClipVisionOutput = _socket("ClipVisionOutput", "CLIP_VISION_OUTPUT")
StyleModel = _socket("StyleModel", "STYLE_MODEL")
Gligen = _socket("Gligen", "GLIGEN")
UpscaleModel = _socket("UpscaleModel", "UPSCALE_MODEL")
LatentUpscaleModel = _socket("LatentUpscaleModel", "LATENT_UPSCALE_MODEL")
BackgroundRemoval = _socket("BackgroundRemoval", "BACKGROUND_REMOVAL")
Audio = _socket("Audio", "AUDIO")
AudioEncoder = _socket("AudioEncoder", "AUDIO_ENCODER")
AudioEncoderOutput = _socket("AudioEncoderOutput", "AUDIO_ENCODER_OUTPUT")
Video = _socket("Video", "VIDEO")
WanCameraEmbedding = _socket("WanCameraEmbedding", "WAN_CAMERA_EMBEDDING")
SVG = _socket("SVG", "SVG")
LoraModel = _socket("LoraModel", "LORA_MODEL")
LossMap = _socket("LossMap", "LOSS_MAP")
Voxel = _socket("Voxel", "VOXEL")
Mesh = _socket("Mesh", "MESH")
Hooks = _socket("Hooks", "HOOKS")
HookKeyframes = _socket("HookKeyframes", "HOOK_KEYFRAMES")
TimestepsRange = _socket("TimestepsRange", "TIMESTEPS_RANGE")
LatentOperation = _socket("LatentOperation", "LATENT_OPERATION")
FlowControl = _socket("FlowControl", "FLOW_CONTROL")
Accumulation = _socket("Accumulation", "ACCUMULATION")
Load3DCamera = _socket("Load3DCamera", "LOAD3D_CAMERA")
Load3D = _socket("Load3D", "LOAD_3D")
Load3DAnimation = _socket("Load3DAnimation", "LOAD_3D_ANIMATION")
Photomaker = _socket("Photomaker", "PHOTOMAKER")
Point = _socket("Point", "POINT")
FaceAnalysis = _socket("FaceAnalysis", "FACE_ANALYSIS")
BBOX = _socket("BBOX", "BBOX")
SEGS = _socket("SEGS", "SEGS")
Tracks = _socket("Tracks", "TRACKS")
Dict = _socket("Dict", "DICT")
Array = _socket("Array", "ARRAY")
Histogram = _socket("Histogram", "HISTOGRAM")
BoundingBoxes = _socket("BoundingBoxes", "BOUNDING_BOXES")
AnyType = _socket("AnyType", "*")


@comfytype(io_type="COMFY_MULTITYPED_V3")
class MultiType:
    Type = Any

    class Input(Input):
        """An input accepting several types; given a widget input as `id`, that widget stands for a literal."""

        def __init__(self, id: str | Input, types: list[type[_ComfyType] | _ComfyType],
                     display_name: str | None = None, optional: bool = False, tooltip: str | None = None,
                     lazy: bool | None = None, extra_dict: dict | None = None, raw_link: bool | None = None,
                     advanced: bool | None = None):
            self.input_override = None
            if isinstance(id, Input):
                self.input_override = copy.copy(id)
                optional = id.optional if id.optional is True else optional
                tooltip = id.tooltip if id.tooltip is not None else tooltip
                display_name = id.display_name if id.display_name is not None else display_name
                lazy = id.lazy if id.lazy is not None else lazy
                if isinstance(self.input_override, WidgetInput):
                    self.input_override.widget_type = self.input_override.get_io_type()
                id = id.id
            super().__init__(id, display_name, optional, tooltip, lazy, extra_dict, raw_link, advanced)
            self._io_types = types

        @property
        def io_types(self) -> list[type[_ComfyType]]:
            return [t if isinstance(t, type) else type(t) for t in self._io_types]

        def get_io_type(self) -> str:
            names = [t.io_type for t in self.io_types]
            if self.input_override is not None:
                names.insert(0, self.input_override.get_io_type())
            return ",".join(dict.fromkeys(names))

        def as_dict(self) -> dict:
            own = super().as_dict()
            return self.input_override.as_dict() | own if self.input_override is not None else own


@comfytype(io_type="COMFY_MATCHTYPE_V3")
class MatchType(ComfyTypeIO):
    """Inputs and outputs sharing a template take one type among `allowed_types`, chosen by what is linked."""

    class Template:
        def __init__(self, template_id: str, allowed_types: type[_ComfyType] | list[type[_ComfyType]] = AnyType):
            self.template_id = template_id
            self.allowed_types = list(allowed_types) if isinstance(allowed_types, (list, tuple)) else [allowed_types]

        def as_dict(self) -> dict:
            return {"template_id": self.template_id,
                    "allowed_types": ",".join(t.io_type for t in self.allowed_types)}

    class Input(Input):
        def __init__(self, id: str, template: MatchType.Template, display_name: str | None = None,
                     optional: bool = False, tooltip: str | None = None, lazy: bool | None = None,
                     extra_dict: dict | None = None, raw_link: bool | None = None, advanced: bool | None = None):
            super().__init__(id, display_name, optional, tooltip, lazy, extra_dict, raw_link, advanced)
            self.template = template

        def as_dict(self) -> dict:
            return super().as_dict() | {"template": self.template.as_dict()}

    class Output(Output):
        def __init__(self, template: MatchType.Template, id: str | None = None, display_name: str | None = None,
                     tooltip: str | None = None, is_output_list: bool = False):
            super().__init__(id, display_name if id or display_name else "MATCHTYPE", tooltip, is_output_list)
            self.template = template

        def as_dict(self) -> dict:
            return super().as_dict() | {"template": self.template.as_dict()}


class DynamicInput(Input):
    """An input that stands for other inputs, chosen by the values a workflow gives."""


class DynamicOutput(Output):
    """An output that stands for other outputs."""


@comfytype(io_type="COMFY_AUTOGROW_V3")
class Autogrow(ComfyTypeI):
    """A growing row of copies of one template input, named by a prefix and a number or from a list."""

    Type = dict
    _MaxNames = 100

    class _AutogrowTemplate:
        def __init__(self, input: Input):
            if isinstance(input, DynamicInput):
                raise ValueError("an Autogrow template cannot be a dynamic input")
            self.input = copy.copy(input)
            if isinstance(self.input, WidgetInput):
                self.input.force_input = True
            self.names: list[str] = []

        def as_dict(self) -> dict:
            return {"input": create_input_dict_v1([self.input])}

        def validate(self) -> None:
            self.input.validate()

    class TemplatePrefix(_AutogrowTemplate):
        def __init__(self, input: Input, prefix: str, min: int = 1, max: int = 10):
            super().__init__(input)
            if not (min >= 0 and 1 <= max <= Autogrow._MaxNames):
                raise ValueError(f"Autogrow needs 0 <= min and 1 <= max <= {Autogrow._MaxNames}, got {min}, {max}")
            self.prefix, self.min, self.max = prefix, min, max
            self.names = [f"{prefix}{i}" for i in range(max)]

        def as_dict(self) -> dict:
            return super().as_dict() | {"prefix": self.prefix, "min": self.min, "max": self.max}

    class TemplateNames(_AutogrowTemplate):
        def __init__(self, input: Input, names: list[str], min: int = 1):
            super().__init__(input)
            if min < 0:
                raise ValueError(f"Autogrow needs min >= 0, got {min}")
            self.names, self.min = list(names[:Autogrow._MaxNames]), min

        def as_dict(self) -> dict:
            return super().as_dict() | {"names": self.names, "min": self.min}

    class Input(DynamicInput):
        def __init__(self, id: str, template: Autogrow.TemplatePrefix | Autogrow.TemplateNames,
                     display_name: str | None = None, optional: bool = False, tooltip: str | None = None,
                     lazy: bool | None = None, extra_dict: dict | None = None):
            super().__init__(id, display_name, optional, tooltip, lazy, extra_dict)
            self.template = template

        def as_dict(self) -> dict:
            return super().as_dict() | {"template": self.template.as_dict()}

        def validate(self) -> None:
            self.template.validate()


@comfytype(io_type="COMFY_DYNAMICCOMBO_V3")
class DynamicCombo(ComfyTypeI):
    """A dropdown whose choice brings the inputs of that option."""

    Type = dict

    class Option:
        def __init__(self, key: str, inputs: list[Input]):
            self.key, self.inputs = _plain(key), inputs

        def as_dict(self) -> dict:
            return {"key": self.key, "inputs": create_input_dict_v1(self.inputs)}

    class Input(DynamicInput):
        def __init__(self, id: str, options: list[DynamicCombo.Option], display_name: str | None = None,
                     optional: bool = False, tooltip: str | None = None, lazy: bool | None = None,
                     extra_dict: dict | None = None):
            super().__init__(id, display_name, optional, tooltip, lazy, extra_dict)
            self.options = options

        def as_dict(self) -> dict:
            return super().as_dict() | {"options": [o.as_dict() for o in self.options]}

        def validate(self) -> None:
            for option in self.options:
                for inp in option.inputs:
                    inp.validate()


class Hidden(str, Enum):
    """Values the executor supplies to a node (through `cls.hidden`) instead of the workflow."""

    unique_id = "UNIQUE_ID"
    prompt = "PROMPT"
    extra_pnginfo = "EXTRA_PNGINFO"
    dynprompt = "DYNPROMPT"
    auth_token_comfy_org = "AUTH_TOKEN_COMFY_ORG"
    api_key_comfy_org = "API_KEY_COMFY_ORG"
    comfy_usage_source = "COMFY_USAGE_SOURCE"
    execution_list = "EXECUTION_LIST"


class HiddenHolder:
    """`cls.hidden` of a running node: the hidden values it asked for; any other attribute is None."""

    def __init__(self, unique_id: str | None, prompt: Any, extra_pnginfo: Any, dynprompt: Any,
                 auth_token_comfy_org: str | None, api_key_comfy_org: str | None,
                 comfy_usage_source: str | None = None, execution_list: Any = None, **kwargs: Any):
        self.unique_id, self.prompt, self.extra_pnginfo, self.dynprompt = unique_id, prompt, extra_pnginfo, dynprompt
        self.auth_token_comfy_org, self.api_key_comfy_org = auth_token_comfy_org, api_key_comfy_org
        self.comfy_usage_source, self.execution_list = comfy_usage_source, execution_list

    def __getattr__(self, key: str) -> None:
        return None

    @classmethod
    def from_dict(cls, d: dict | None) -> HiddenHolder:
        """From {Hidden member or its value: value}."""
        d = d or {}
        return cls(**{member.name: d.get(member.value) for member in Hidden})

    @classmethod
    def from_v3_data(cls, v3_data: dict | None) -> HiddenHolder:
        return cls.from_dict(v3_data["hidden_inputs"] if v3_data else None)


def add_to_dict_v1(i: Input, d: dict) -> None:
    """Adds one input to a V1 input dict, under "required" or "optional", as (type, options)."""
    options = i.as_dict()
    options.pop("optional", None)
    d.setdefault("optional" if i.optional else "required", {})[i.id] = (i.get_io_type(), options)


def create_input_dict_v1(inputs: list[Input]) -> dict:
    """The V1 (`INPUT_TYPES`) dict of a list of inputs."""
    d: dict = {"required": {}}
    for i in inputs:
        add_to_dict_v1(i, d)
    return d


@dataclass
class NodeInfoV1:
    """One entry of `GET /object_info`, as ComfyUI renders a V3 node."""

    input: dict = None
    input_order: dict = None
    is_input_list: bool = None
    output: list = None
    output_is_list: list = None
    output_name: list = None
    output_tooltips: list = None
    output_matchtypes: list = None
    name: str = None
    display_name: str = None
    description: str = None
    python_module: Any = None
    category: str = None
    output_node: bool = None
    deprecated: bool = None
    experimental: bool = None
    dev_only: bool = None
    api_node: bool = None
    price_badge: dict = None
    search_aliases: list = None
    essentials_category: str = None
    has_intermediate_output: bool = None


@dataclass
class Schema:
    """What a V3 node declares: id, metadata, inputs, outputs, hidden values and flags."""

    node_id: str
    display_name: str = None
    category: str = "sd"
    inputs: list[Input] = field(default_factory=list)
    outputs: list[Output] = field(default_factory=list)
    hidden: list[Hidden] = field(default_factory=list)
    description: str = ""
    search_aliases: list[str] = field(default_factory=list)
    is_input_list: bool = False
    is_output_node: bool = False
    is_deprecated: bool = False
    is_experimental: bool = False
    is_dev_only: bool = False
    is_api_node: bool = False
    not_idempotent: bool = False
    enable_expand: bool = False
    accept_all_inputs: bool = False
    essentials_category: str | None = None
    has_intermediate_output: bool = False

    def validate(self) -> None:
        """Raises ValueError when input ids or output ids repeat."""
        input_ids = [i.id for inp in self.inputs if not isinstance(inp, DynamicInput) for i in inp.get_all()]
        output_ids = [o.id for o in self.outputs]
        issues = [f"{what} ids must be unique, but {[k for k, n in Counter(ids).items() if n > 1]} are not."
                  for what, ids in (("Input", input_ids), ("Output", output_ids)) if len(set(ids)) != len(ids)]
        if issues:
            raise ValueError("\n".join(issues))
        for part in [*self.inputs, *self.outputs]:
            part.validate()

    def finalize(self) -> None:
        """Adds the hidden values output and API nodes always get, and ids for outputs without one."""
        self.inputs, self.outputs, self.hidden = self.inputs or [], self.outputs or [], self.hidden or []
        wanted = ([Hidden.auth_token_comfy_org, Hidden.api_key_comfy_org, Hidden.comfy_usage_source]
                  if self.is_api_node else []) + ([Hidden.prompt, Hidden.extra_pnginfo] if self.is_output_node else [])
        self.hidden += [h for h in wanted if h not in self.hidden]
        for i, output in enumerate(self.outputs):
            if output.id is None:
                output.id = f"_{i}_{output.io_type}_"

    def get_v1_info(self, cls: type) -> NodeInfoV1:
        """The node's `GET /object_info` entry."""
        inputs = create_input_dict_v1(self.inputs)
        for hidden in self.hidden:
            inputs.setdefault("hidden", {})[hidden.name] = (hidden.value,)
        matchtypes = [o.template.template_id if isinstance(o, MatchType.Output) else None for o in self.outputs]
        return NodeInfoV1(
            input=inputs,
            input_order={key: list(value) for key, value in inputs.items()},
            is_input_list=self.is_input_list,
            output=[o.io_type for o in self.outputs],
            output_is_list=[o.is_output_list for o in self.outputs],
            output_name=[o.display_name or o.io_type for o in self.outputs],
            output_tooltips=[o.tooltip or None for o in self.outputs],
            output_matchtypes=matchtypes if any(m is not None for m in matchtypes) else None,
            name=self.node_id, display_name=self.display_name, description=self.description,
            python_module=getattr(cls, "RELATIVE_PYTHON_MODULE", "nodes"), category=self.category,
            output_node=self.is_output_node, deprecated=self.is_deprecated, experimental=self.is_experimental,
            dev_only=self.is_dev_only, api_node=self.is_api_node,
            search_aliases=self.search_aliases or None, essentials_category=self.essentials_category,
            has_intermediate_output=self.has_intermediate_output)


class NodeOutput(_NodeOutputInternal):
    """What `execute` returns: the output values, and optionally a UI payload, an expansion or a block."""

    def __init__(self, *args: Any, ui: _UIOutput | dict | None = None, expand: dict | None = None,
                 block_execution: str | None = None):
        self.args, self.ui, self.expand, self.block_execution = args, ui, expand, block_execution

    @property
    def result(self) -> tuple | None:
        return self.args if self.args else None

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> NodeOutput:
        """From V1's {"result": ..., "ui": ..., "expand": ...}."""
        result = data.get("result", ())
        if type(result).__name__ == "ExecutionBlocker":
            return cls(block_execution=result.message)
        return cls(*result, ui=data.get("ui"), expand=data.get("expand"))

    def __getitem__(self, index: int) -> Any:
        return self.args[index]


class _UIOutput:
    """A UI payload of a node (images to preview, text, ...)."""

    def as_dict(self) -> dict:
        raise NotImplementedError(f"{type(self).__name__} must define as_dict()")


def _from_schema(read: Any) -> classproperty:
    """A V1 class attribute (RETURN_TYPES, CATEGORY, ...) read from the class's schema."""
    return classproperty(lambda cls: read(cls.GET_SCHEMA()))


def _normalized(cls: type[ComfyNode], value: Any) -> NodeOutput:
    """Any accepted return of `execute` as a NodeOutput."""
    if value is None:
        value = NodeOutput()
    elif isinstance(value, tuple):
        value = NodeOutput(*value)
    elif isinstance(value, dict):
        value = NodeOutput.from_dict(value)
    elif type(value).__name__ == "ExecutionBlocker":
        value = NodeOutput(block_execution=value.message)
    elif not isinstance(value, _NodeOutputInternal):
        raise Exception(f"Invalid return type from node: {type(value)}")
    if value.expand is not None and not cls.SCHEMA.enable_expand:
        raise Exception(f"Node {cls.__name__} is not expandable, but expand included in NodeOutput; developer "
                        f"should set enable_expand=True on node's Schema to allow this.")
    return value


class ComfyNode(_ComfyNodeInternal):
    """The base of every V3 node: `define_schema` and `execute` classmethods, nothing kept on instances."""

    RELATIVE_PYTHON_MODULE = None
    SCHEMA = None
    hidden: HiddenHolder = None  # set on the class clone each call runs on

    @classmethod
    def define_schema(cls) -> Schema:
        """Returns the node's Schema; every node defines it."""
        raise NotImplementedError

    @classmethod
    def execute(cls, **kwargs: Any) -> NodeOutput:
        """Runs the node; every node defines it (it may be `async`)."""
        raise NotImplementedError

    @classmethod
    def validate_inputs(cls, **kwargs: Any) -> bool | str:
        """Optionally checks the inputs (V1's VALIDATE_INPUTS): True, or a message."""
        raise NotImplementedError

    @classmethod
    def fingerprint_inputs(cls, **kwargs: Any) -> Any:
        """Optionally, a value that changes when the node must run again (V1's IS_CHANGED); NaN always runs."""
        raise NotImplementedError

    @classmethod
    def check_lazy_status(cls, **kwargs: Any) -> list[str]:
        """The names of lazy inputs still needed; the default wants every input not yet evaluated (None)."""
        return [name for name, value in kwargs.items() if value is None]

    @classmethod
    def GET_BASE_CLASS(cls) -> type[ComfyNode]:  # noqa: N802 - ComfyUI's V1-style names
        return ComfyNode

    @classmethod
    def VALIDATE_CLASS(cls) -> None:  # noqa: N802
        for name in ("define_schema", "execute"):
            if first_real_override(cls, name) is None:
                raise Exception(f"No {name} function was defined for node class {cls.__name__}.")

    @classmethod
    def FINALIZE_SCHEMA(cls) -> Schema:  # noqa: N802
        schema = cls.define_schema()
        schema.finalize()
        return schema

    @classmethod
    def GET_SCHEMA(cls) -> Schema:  # noqa: N802
        """The validated, finalized schema (also kept as `cls.SCHEMA`)."""
        cls.VALIDATE_CLASS()
        schema = cls.FINALIZE_SCHEMA()
        schema.validate()
        cls.SCHEMA = schema
        return schema

    @classmethod
    def PREPARE_CLASS_CLONE(cls, v3_data: dict | None) -> type[ComfyNode]:  # noqa: N802
        """A fresh subclass to run one call on, with `hidden` set, so no call leaves state on the class."""
        return type(f"{cls.__name__}Clone", (cls,), {"hidden": HiddenHolder.from_v3_data(v3_data),
                                                     "__module__": cls.__module__})

    @classmethod
    def EXECUTE_NORMALIZED(cls, *args: Any, **kwargs: Any) -> NodeOutput:  # noqa: N802
        return _normalized(cls, cls.execute(*args, **kwargs))

    @classmethod
    async def EXECUTE_NORMALIZED_ASYNC(cls, *args: Any, **kwargs: Any) -> NodeOutput:  # noqa: N802
        return _normalized(cls, await cls.execute(*args, **kwargs))

    @classmethod
    def GET_NODE_INFO_V1(cls) -> dict[str, Any]:  # noqa: N802
        return asdict(cls.GET_SCHEMA().get_v1_info(cls))

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, dict]:  # noqa: N802
        schema = cls.FINALIZE_SCHEMA()
        return schema.get_v1_info(cls).input

    FUNCTION = classproperty(lambda cls: "EXECUTE_NORMALIZED_ASYNC" if inspect.iscoroutinefunction(cls.execute)
                             else "EXECUTE_NORMALIZED")
    RETURN_TYPES = _from_schema(lambda s: [o.io_type for o in s.outputs])
    RETURN_NAMES = _from_schema(lambda s: [o.display_name or o.io_type for o in s.outputs])
    OUTPUT_IS_LIST = _from_schema(lambda s: [o.is_output_list for o in s.outputs])
    OUTPUT_TOOLTIPS = _from_schema(lambda s: [o.tooltip or None for o in s.outputs])
    OUTPUT_NODE = _from_schema(lambda s: s.is_output_node)
    INPUT_IS_LIST = _from_schema(lambda s: s.is_input_list)
    NOT_IDEMPOTENT = _from_schema(lambda s: s.not_idempotent)
    ACCEPT_ALL_INPUTS = _from_schema(lambda s: s.accept_all_inputs)
    HAS_INTERMEDIATE_OUTPUT = _from_schema(lambda s: s.has_intermediate_output)
    CATEGORY = _from_schema(lambda s: s.category)
    DESCRIPTION = _from_schema(lambda s: s.description)
    DEPRECATED = _from_schema(lambda s: s.is_deprecated)
    EXPERIMENTAL = _from_schema(lambda s: s.is_experimental)
    DEV_ONLY = _from_schema(lambda s: s.is_dev_only)
    API_NODE = _from_schema(lambda s: s.is_api_node)
