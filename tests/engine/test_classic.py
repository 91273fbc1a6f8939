"""A node written exactly as a ComfyUI custom node loads and runs unchanged."""

from __future__ import annotations

import math
import types

from sigmagraph.engine import Registry
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
