"""Declarations ComfyUI accepts though they are loose, one node each; and two that cannot run."""

import asyncio


class _Base:
    CATEGORY = "fixture/lenient"
    FUNCTION = "run"


class HiddenKinds(_Base):
    """Hidden kinds the engine does not know are supplied as None; DYNPROMPT and PROMPT_ID are supplied."""

    @classmethod
    def INPUT_TYPES(s):
        return {"required": {}, "hidden": {"unique_id": "UNIQUE_ID", "token": "AUTH_TOKEN_COMFY_ORG",
                                           "dynprompt": "DYNPROMPT", "prompt_id": "PROMPT_ID"}}

    RETURN_TYPES = ("STRING",)

    def run(self, unique_id=None, token="unset", dynprompt=None, prompt_id=None):
        return (f"{unique_id}|{token}|{dynprompt is not None}|{prompt_id}",)


class OddNames(_Base):
    """Input names that are not identifiers."""

    @classmethod
    def INPUT_TYPES(s):
        return {"required": {"text 1": ("STRING", {"default": "a"}), "text-2": ("STRING", {"default": "b"})}}

    RETURN_TYPES = ("STRING",)

    def run(self, **kwargs):
        return (kwargs["text 1"] + kwargs["text-2"],)


class LooseWidgets(_Base):
    """Widget declarations ComfyUI's front end shows anyway."""

    @classmethod
    def INPUT_TYPES(s):
        return {"required": {
            "none_default": ("INT", {"default": None, "min": 5, "max": 10}),
            "text_default": ("FLOAT", {"default": "half"}),
            "out_of_range": ("INT", {"default": 50, "min": 0, "max": 10}),
            "fractional": ("INT", {"default": 2, "min": 0.5, "max": 8.5, "step": 0.5}),
            "no_label": ("STRING", {"default": None}),
        }}

    RETURN_TYPES = ("STRING",)

    def run(self, none_default, text_default, out_of_range, fractional, no_label):
        return (f"{none_default}|{text_default}|{out_of_range}|{fractional}|{no_label!r}",)


class ExtraValues(_Base):
    """Returns more values than it declares outputs."""

    @classmethod
    def INPUT_TYPES(s):
        return {"required": {"value": ("INT", {"default": 1})}}

    RETURN_TYPES = ("INT",)

    def run(self, value):
        return (value, value + 1, value + 2)


class RequiredAndOptional(_Base):
    """One name in both sections: it is required."""

    @classmethod
    def INPUT_TYPES(s):
        return {"required": {"value": ("INT", {"default": 3})}, "optional": {"value": ("INT", {"default": 4})}}

    RETURN_TYPES = ("INT",)

    def run(self, value):
        return (value * 10,)


class SelfValidated(_Base):
    """VALIDATE_INPUTS decides, and may allow what the widget's range would not."""

    @classmethod
    def INPUT_TYPES(s):
        return {"required": {"value": ("INT", {"default": 1, "min": 0, "max": 10})}}

    @classmethod
    def VALIDATE_INPUTS(cls, value):
        return True if value % 2 else f"{value} is even"

    RETURN_TYPES = ("INT",)

    def run(self, value):
        return (value,)


RUNS = {"Counted": 0}


class Counted(_Base):
    """IS_CHANGED as an instance method (ComfyUI calls it on the class; the adapter on a fresh instance)."""

    @classmethod
    def INPUT_TYPES(s):
        return {"required": {"value": ("INT", {"default": 1}), "mode": (["same", "always"],)}}

    RETURN_TYPES = ("INT",)

    def IS_CHANGED(self, mode, **kwargs):
        return float("nan") if mode == "always" else "same"

    def run(self, value, mode):
        RUNS["Counted"] += 1
        return (value,)


class Collect(_Base):
    """Takes whatever it is given (**kwargs): links to inputs it never declared reach it."""

    @classmethod
    def INPUT_TYPES(s):
        return {"required": {"first": ("INT", {"forceInput": True})}}

    RETURN_TYPES = ("STRING",)

    def run(self, **kwargs):
        return (",".join(f"{k}={v}" for k, v in sorted(kwargs.items())),)


class Slow(_Base):
    """An async method."""

    @classmethod
    def INPUT_TYPES(s):
        return {"required": {"value": ("INT", {"default": 1})}}

    RETURN_TYPES = ("INT",)

    async def run(self, value):
        await asyncio.sleep(0)
        return (value + 100,)


class NoMethod(_Base):
    """FUNCTION names a method the class does not have: it cannot run."""

    @classmethod
    def INPUT_TYPES(s):
        return {"required": {}}

    RETURN_TYPES = ("INT",)
    FUNCTION = "missing"


class BrokenInputs(_Base):
    """INPUT_TYPES fails: there is nothing to run."""

    @classmethod
    def INPUT_TYPES(s):
        raise KeyError("no such model folder")

    RETURN_TYPES = ("INT",)

    def run(self):
        return (0,)


NODE_CLASS_MAPPINGS = {f"Lenient{cls.__name__}": cls for cls in (
    HiddenKinds, OddNames, LooseWidgets, ExtraValues, RequiredAndOptional, SelfValidated, Counted, Collect, Slow,
    NoMethod, BrokenInputs)}
