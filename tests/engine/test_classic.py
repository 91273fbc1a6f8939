"""A node written exactly as a ComfyUI custom node loads and runs unchanged."""

from __future__ import annotations

import math
import types

from sigmagraph.engine import ALWAYS_RUN, Registry
from sigmagraph.engine.executor import Executor


class ImageBrightness:
    """Written as ComfyUI's documentation teaches: class attributes, INPUT_TYPES with option dicts."""

    runs = 0

    @classmethod
    def INPUT_TYPES(s):
        return {
            "required": {
                "value": ("NUMBER",),
                "amount": ("FLOAT", {"default": 1.0, "min": 0.0, "max": 10.0, "step": 0.1}),
                "mode": (["add", "multiply"],),
                "note": ("STRING", {"multiline": True, "default": "hi"}),
            },
            "optional": {"bias": ("INT", {"default": 0, "min": -5, "max": 5})},
            "hidden": {"prompt": "PROMPT", "unique_id": "UNIQUE_ID"},
        }

    RETURN_TYPES = ("NUMBER", "STRING")
    RETURN_NAMES = ("result", "text")
    FUNCTION = "apply"
    CATEGORY = "examples"

    def apply(self, value, amount, mode, note, bias=0, prompt=None, unique_id=None):
        ImageBrightness.runs += 1
        assert isinstance(prompt, dict) and unique_id in prompt
        result = value + amount if mode == "add" else value * amount
        return (result + bias, f"{note}:{unique_id}")

    @classmethod
    def IS_CHANGED(s, value=None, amount=None, **kwargs):
        return float("nan") if amount == 7.0 else ""


class Printer:
    @classmethod
    def INPUT_TYPES(s):
        return {"required": {"text": ("STRING", {"forceInput": True})}}

    RETURN_TYPES = ()
    FUNCTION = "show"
    OUTPUT_NODE = True
    CATEGORY = "examples"

    def show(self, text):
        return {"ui": {"text": [text]}}


def classic_registry(registry: Registry) -> Registry:
    module = types.ModuleType("classic_pack")
    module.NODE_CLASS_MAPPINGS = {"ImageBrightness": ImageBrightness, "Printer": Printer}
    module.NODE_DISPLAY_NAME_MAPPINGS = {"ImageBrightness": "Brightness (classic)"}
    registry.load_module(module, "classic_pack")
    return registry


def workflow(amount=2.0):
    return {"1": {"class_type": "Constant", "inputs": {"value": 3.0}},
            "2": {"class_type": "ImageBrightness",
                  "inputs": {"value": ["1", 0], "amount": amount, "mode": "multiply", "note": "n", "bias": 1}},
            "3": {"class_type": "Printer", "inputs": {"text": ["2", 1]}},
            "4": {"class_type": "Show", "inputs": {"value": ["2", 0], "label": "x"}}}


def test_catalogue_entry_matches_comfyui_shape(registry, config):
    entry = classic_registry(registry).catalogue(config)["ImageBrightness"]
    assert entry["display_name"] == "Brightness (classic)" and entry["category"] == "examples"
    assert entry["input"]["required"]["amount"] == ["FLOAT", {"default": 1.0, "min": 0.0, "max": 10.0, "step": 0.1}]
    assert entry["input"]["required"]["mode"][0] == ["add", "multiply"]
    assert entry["input"]["optional"]["bias"][1]["min"] == -5
    assert entry["input"]["hidden"] == {"prompt": "PROMPT", "unique_id": "UNIQUE_ID"}
    assert entry["output"] == ["NUMBER", "STRING"] and entry["output_name"] == ["result", "text"]
    assert classic_registry(Registry()).catalogue(config)["Printer"]["output_node"] is True


def test_classic_nodes_run(registry, config):
    executor = Executor(classic_registry(registry), config)
    ImageBrightness.runs = 0
    result = executor.run(workflow())
    assert result.ok and result.ui_outputs["4"]["values"] == [7.0] and result.ui_outputs["3"]["text"] == ["n:2"]
    executor.run(workflow())
    assert ImageBrightness.runs == 1  # IS_CHANGED returned the same value: cached


def test_is_changed_nan_means_always_run(registry, config):
    executor = Executor(classic_registry(registry), config)
    ImageBrightness.runs = 0
    executor.run(workflow(amount=7.0))
    executor.run(workflow(amount=7.0))
    assert ImageBrightness.runs == 2
    assert math.isnan(float("nan"))


def test_broken_classic_node_is_reported_and_skipped(registry):
    class Broken:
        @classmethod
        def INPUT_TYPES(s):
            return {"required": {"x": "INT"}}  # not a tuple
        RETURN_TYPES = ("INT",)
        FUNCTION = "f"

    module = types.ModuleType("broken_pack")
    module.NODE_CLASS_MAPPINGS = {"Broken": Broken, "Printer": Printer}
    registry.load_module(module, "broken_pack")
    assert "Broken" not in registry.nodes and "Printer" in registry.nodes
    assert registry.problems[0].node == "Broken" and "input 'x'" in registry.problems[0].error


def test_name_conflict_keeps_first(registry):
    module = types.ModuleType("dup_pack")
    module.NODE_CLASS_MAPPINGS = {"Constant": Printer}
    registry.load_module(module, "dup_pack")
    assert registry.nodes["Constant"].category == "test"
    assert "already defined by testing" in registry.problems[0].error


class Hooks:
    """ComfyUI's optional hooks, as packs write them."""

    @classmethod
    def INPUT_TYPES(s):
        return {"required": {"pick": ("BOOLEAN", {"default": True}), "a": ("NUMBER", {"lazy": True}),
                             "b": ("NUMBER", {"lazy": True, "rawLink": True})}}

    RETURN_TYPES = ("NUMBER",)
    FUNCTION = "choose"

    def check_lazy_status(self, pick, a=None, b=None):
        return ["a"] if pick and a is None else []

    @classmethod
    def VALIDATE_INPUTS(cls, pick, input_types):
        return True

    async def choose(self, pick, a=None, **rest):
        return (a, "an extra value")


class Base:
    @classmethod
    def IS_CHANGED(cls, amount):
        return float("nan") if amount > 1 else amount


class Inherits(Base):
    """IS_CHANGED comes from a base class (a classmethod there); FUNCTION is a staticmethod."""

    @classmethod
    def INPUT_TYPES(s):
        return {"required": {"amount": ("FLOAT", {"default": 1.0, "min": 2.0, "max": 0.0}),
                             "mode": (["fast", "slow"], {"default": "medium", "tooltip": 3})}}

    RETURN_TYPES = ("FLOAT",)
    FUNCTION = "scale"

    @staticmethod
    def scale(amount):  # takes no `mode`: it is not given one
        return (amount * 2,)


def test_comfyuis_hooks_map_onto_spec_fields():
    import asyncio
    import inspect

    from sigmagraph.engine.classic import classic_spec

    spec, warnings = classic_spec("Hooks", Hooks)
    assert not warnings
    assert [(i.name, i.lazy, i.raw_link) for i in spec.inputs] == [("pick", None, None), ("a", True, None),
                                                                  ("b", True, True)]
    assert spec.lazy_status(pick=True, a=None, b=None) == ["a"] and spec.lazy_status(pick=False) == []
    assert spec.validate_inputs_takes == {"pick", "input_types"} and not spec.validate_inputs_takes_all
    assert spec.accepts_extra_inputs and spec.runs_async and inspect.iscoroutinefunction(spec.function)
    assert asyncio.run(spec.function(pick=True, a=5, b=None)) == (5,)  # the extra value dropped


def test_inherited_hooks_static_functions_and_loose_options():
    from sigmagraph.engine.classic import classic_spec

    spec, warnings = classic_spec("Inherits", Inherits)
    assert spec.fingerprint(amount=1.0) == 1.0 and spec.fingerprint(amount=3.0) == ALWAYS_RUN
    assert spec.function(amount=2.5, mode="fast") == (5.0,)
    amount, mode = spec.inputs
    assert (amount.min, amount.max, amount.default) == (-math.inf, math.inf, 1.0)
    assert (mode.default, mode.tooltip) == (None, None)
    assert warnings == ["min 2.0 is above max 0.0: both ignored", "default 'medium' is not one of the choices: ignored",
                        warnings[2]]
    assert warnings[2].startswith("option(s) tooltip ignored")


FILES = ["a.safetensors"]


class ListsFiles:
    @classmethod
    def INPUT_TYPES(s):
        return {"required": {"name": (list(FILES),)}}

    RETURN_TYPES = ("STRING",)
    FUNCTION = "run"

    def run(self, name):
        return (name,)


def test_combo_choices_are_asked_of_input_types_again(config):
    from sigmagraph.engine.classic import spec_from_classic

    (choice,) = spec_from_classic("ListsFiles", ListsFiles).inputs
    FILES.append("b.safetensors")  # a file added while the server runs, as ComfyUI shows it
    try:
        assert choice.resolve(config) == ["a.safetensors", "b.safetensors"]
    finally:
        FILES.remove("b.safetensors")
