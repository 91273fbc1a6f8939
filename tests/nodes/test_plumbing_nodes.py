"""The model-free nodes of ComfyUI's official templates against ComfyUI's documented semantics.

Expected values are worked out by hand in the comments (ComfyUI's formulas: 1 megapixel is
1024 x 1024, Python's round, int() truncation, re semantics). Widget lists in the UI-format tests
are copied from the official templates (comfyui-workflow-templates), so their order is ComfyUI's.
"""

from __future__ import annotations

import json
import math
import struct
import sys
import zlib

import numpy as np
import pytest
import torch
from PIL import Image

from sigmagraph.engine.testing import output, pack_session, run
from sigmagraph.engine.ui_format import ui_to_api
from sigmagraph.nodes.expression import ExpressionError, evaluate
from sigmagraph.nodes.packs import logic
from sigmagraph.nodes.packs.analytic import analytic_model
from sigmagraph.nodes.packs.image import BatchImagesNode
from sigmagraph.nodes.packs.image_size import GetImageSize, ImageScaleToTotalPixels, ResizeImageMaskNode
from sigmagraph.nodes.packs.sampling_extras import CFGNorm, ManualSigmas
from sigmagraph.nodes.sampling.guidance import guided_denoiser

from .test_sampling_nodes import SEED, base

@pytest.fixture(scope="module")
def session(tmp_path_factory):
    return pack_session((), tmp_path_factory.mktemp("plumbing"))


def value_of(session, node_type, inputs, slot=0):
    """Runs one node (behind a PreviewAny, so it is wanted) and returns one of its outputs."""
    result = run(session, {"1": {"class_type": node_type, "inputs": inputs},
                           "2": {"class_type": "PreviewAny", "inputs": {"source": ["1", slot]}}})
    return output(session, result, "1", slot)


def widgets(session, node_type, values):
    """The API inputs of one UI-format node with these widgets_values (no links)."""
    document = {"nodes": [{"id": 1, "type": node_type, "widgets_values": values}], "links": []}
    return ui_to_api(document, session.registry)["1"]["inputs"]


# ----------------------------------------------------------------------------------------------
# Primitives


def test_primitive_catalogue_matches_comfyui(session):
    info = session.registry.catalogue(session.config)
    int_options = info["PrimitiveInt"]["input"]["required"]["value"][1]
    assert (int_options["min"], int_options["max"], int_options["control_after_generate"]) == \
        (-sys.maxsize, sys.maxsize, True)
    assert info["PrimitiveFloat"]["input"]["required"]["value"][1]["step"] == 0.1
    assert info["PrimitiveStringMultiline"]["input"]["required"]["value"][1]["multiline"] is True
    assert [info[n]["output"] for n in ("PrimitiveInt", "PrimitiveFloat", "PrimitiveBoolean", "PrimitiveString")] \
        == [["INT"], ["FLOAT"], ["BOOLEAN"], ["STRING"]]
    assert info["PrimitiveInt"]["category"] == "utils/primitive"


@pytest.mark.parametrize("node_type, value", [("PrimitiveInt", -7), ("PrimitiveFloat", 2.5),
                                              ("PrimitiveBoolean", True), ("PrimitiveString", "x"),
                                              ("PrimitiveStringMultiline", "a\nb")])
def test_primitives_pass_their_value_on(session, node_type, value):
    assert value_of(session, node_type, {"value": value}) == value


def test_primitive_int_widgets_skip_control_after_generate(session):
    assert widgets(session, "PrimitiveInt", [20, "fixed"]) == {"value": 20}


# ----------------------------------------------------------------------------------------------
# Strings (comfy_extras/nodes_string.py)


@pytest.mark.parametrize("node_type, inputs, expected", [
    ("StringConcatenate", {"string_a": "a", "string_b": "b", "delimiter": "-"}, "a-b"),
    ("StringSubstring", {"string": "hello world", "start": -5, "end": 11}, "world"),
    ("StringLength", {"string": "héllo"}, 5),
    ("CaseConverter", {"string": "hello wORLD", "mode": "Title Case"}, "Hello World"),
    ("CaseConverter", {"string": "hELLO wORLD", "mode": "Capitalize"}, "Hello world"),
    ("StringTrim", {"string": "  x  ", "mode": "Left"}, "x  "),
    ("StringReplace", {"string": "a-b-c", "find": "-", "replace": "+"}, "a+b+c"),
    ("StringContains", {"string": "Hello", "substring": "hell", "case_sensitive": False}, True),
    ("StringContains", {"string": "Hello", "substring": "hell", "case_sensitive": True}, False),
    # from templates_graphic_design_recomposer: a case-insensitive prefix test
    ("StringCompare", {"string_a": "Nano Banana 2", "string_b": "nano banana 2", "mode": "Starts With",
                       "case_sensitive": False}, True),
    ("StringCompare", {"string_a": "abc", "string_b": "bc", "mode": "Ends With", "case_sensitive": True}, True),
    ("RegexMatch", {"string": "abc123", "regex_pattern": r"\d+", "case_insensitive": True, "multiline": False,
                    "dotall": False}, True),
    ("RegexMatch", {"string": "abc", "regex_pattern": "(", "case_insensitive": True, "multiline": False,
                    "dotall": False}, False),
])
def test_string_nodes(session, node_type, inputs, expected):
    assert value_of(session, node_type, inputs) == expected


def extract(session, string, pattern, mode, group_index=1, case_insensitive=True):
    return value_of(session, "RegexExtract", {"string": string, "regex_pattern": pattern, "mode": mode,
                                              "case_insensitive": case_insensitive, "multiline": False,
                                              "dotall": False, "group_index": group_index})


def test_regex_extract_modes(session):
    text = "a1b22c333"
    assert extract(session, text, r"(\w)(\d+)", "First Match") == "a1"
    assert extract(session, text, r"\d+", "All Matches") == "1\n22\n333"
    assert extract(session, text, r"(\w)(\d+)", "All Matches") == "a\nb\nc"  # findall's tuples: first group
    assert extract(session, text, r"(\w)(\d+)", "First Group", 2) == "1"
    assert extract(session, text, r"(\w)(\d+)", "All Groups", 2) == "1\n22\n333"
    assert extract(session, text, r"(\w)(\d+)", "First Group", 3) == ""  # no third group
    # from templates-car_product: the negative part after "--no"
    assert extract(session, "a red car --no people", r"(?<=--no\s)(.+)$", "First Match") == "people"
    assert extract(session, text, "(", "First Match") == ""  # invalid pattern


def test_regex_replace(session):
    def replace(string, pattern, replacement, **options):
        return value_of(session, "RegexReplace", {"string": string, "regex_pattern": pattern,
                                                  "replace": replacement, **options})

    # from api_bytedance_seed: strip a leading ```json fence (case-sensitive, all occurrences)
    assert replace("```json\n{\"a\": 1}", r"^```(?:json)?\s*\n?", "", case_insensitive=False) == '{"a": 1}'
    assert replace("AbA", "a", "x") == "xbx"  # case-insensitive by default
    assert replace("aaa", "a", "b", count=1) == "baa"
    assert replace("2024-05", r"(\d+)-(\d+)", r"\2/\1") == "05/2024"


def test_regex_replace_widget_order(session):
    values = ["", "^$", "[]", True, False, False, 0]  # from image_ming_image_01_design_image_edit
    assert widgets(session, "RegexReplace", values) == {
        "string": "", "regex_pattern": "^$", "replace": "[]", "case_insensitive": True, "multiline": False,
        "dotall": False, "count": 0}


# ----------------------------------------------------------------------------------------------
# Switch, Math Expression, Preview Any


def test_switch_passes_the_chosen_branch(session):
    def switched(on):
        workflow = {"1": {"class_type": "PrimitiveString", "inputs": {"value": "yes"}},
                    "2": {"class_type": "PrimitiveString", "inputs": {"value": "no"}},
                    "3": {"class_type": "ComfySwitchNode", "inputs": {"switch": on, "on_true": ["1", 0],
                                                                       "on_false": ["2", 0]}},
                    "4": {"class_type": "PreviewAny", "inputs": {"source": ["3", 0]}}}
        result = run(session, workflow)
        assert ("1" in result.ran + result.cached) == on and ("2" in result.ran + result.cached) != on
        return output(session, result, "4")

    assert (switched(True), switched(False)) == ("yes", "no")  # and only the chosen branch ran
    spec = session.registry.nodes["ComfySwitchNode"]
    assert [(i.name, i.type, i.lazy) for i in spec.inputs[1:]] == [("on_false", "*", True), ("on_true", "*", True)]
    assert widgets(session, "ComfySwitchNode", [True]) == {"switch": True}


def math_of(session, expression, **values):
    workflow = {"1": {"class_type": "ComfyMathExpression",
                      "inputs": {"expression": expression, **{f"values.{k}": v for k, v in values.items()}}},
                "2": {"class_type": "PreviewAny", "inputs": {"source": ["1", 0]}}}
    result = run(session, workflow)
    return tuple(output(session, result, "1", slot) for slot in range(3))


@pytest.mark.parametrize("expression, values, expected", [
    ("a/2", {"a": 1080}, 540.0),  # template_image_speech_to_video
    ("max(((a + 15) // 16) * 16, 256)", {"a": 1000}, 1008),  # (1015 // 16) * 16 = 63 * 16
    ("max(((a + 15) // 16) * 16, 256)", {"a": 100}, 256),
    ("a & ~1", {"a": 721}, 720),
    ("a & -8", {"a": 1023}, 1016),
    # 5 s at 24 fps padded to 17k + 5 frames: 120 % 17 = 1, (5 - 1) % 17 = 4
    ("max(5, round(a * 24)) + (5 - (max(5, round(a * 24)) % 17)) % 17", {"a": 5.0}, 124),
    ("ceil(1.5 * log2(max(a, b))) + 2", {"a": 1024, "b": 512}, 17),  # ceil(1.5 * 10) + 2
    ("(b - c) * (a - 1)", {"a": 3, "b": 10, "c": 4}, 12),
    ("sum(values) / 2", {"a": 1, "b": 2, "c": 3}, 3.0),
    ("a if a > b else b", {"a": 2, "b": 7}, 7),
    ("1 < a <= 3 and not b", {"a": 3, "b": False}, True),
    ("a + 1", {"a": True}, 2),
])
def test_math_expression_values(session, expression, values, expected):
    as_float, as_int, as_bool = math_of(session, expression, **values)
    assert as_float == float(expected) and as_int == int(expected) and as_bool == bool(expected)


def test_math_expression_outputs_truncate_and_compare(session):
    assert math_of(session, "a", a=-2.7) == (-2.7, -2, True)  # int() truncates towards zero
    assert math_of(session, "a > 2048", a=4096) == (1.0, 1, True)  # 3d_moge_panorama_to_mesh
    assert math_of(session, "a > 2048", a=100) == (0.0, 0, False)


def test_math_expression_reads_linked_values(session):
    workflow = {"1": {"class_type": "PrimitiveFloat", "inputs": {"value": 2.5}},
                "2": {"class_type": "PrimitiveInt", "inputs": {"value": 4}},
                "3": {"class_type": "ComfyMathExpression",
                      "inputs": {"expression": "a * b + 1", "values.a": ["1", 0], "values.b": ["2", 0]}},
                "4": {"class_type": "PreviewAny", "inputs": {"source": ["3", 1]}}}
    assert output(session, run(session, workflow), "4") == "11"


@pytest.mark.parametrize("expression, token", [
    ("__import__('os').system('x')", "__import__"),
    ("a.real", "a.real"),
    ("d + 1", "d"),
    ("'text'", "'text'"),
    ("[a for a in values]", "[a for a in values]"),
    ("a ** 99999999", "too large"),
    ("pow(a, 5000)", "5000"),
    ("1 / 0", "ZeroDivisionError"),
    ("a +", "invalid expression"),
])
def test_math_expression_refuses_and_names_the_bad_part(expression, token):
    with pytest.raises(ExpressionError, match=None) as error:
        evaluate(expression, {"a": 2, "values": [2]})
    assert token in str(error.value)


def test_math_expression_errors_in_a_run(session):
    workflow = {"1": {"class_type": "ComfyMathExpression", "inputs": {"expression": "a + b", "values.a": 1}},
                "2": {"class_type": "PreviewAny", "inputs": {"source": ["1", 0]}}}
    result = session.run(workflow)
    assert not result.ok and "'b'" in result.error["exception_message"]
    assert not session.validate({"1": {"class_type": "ComfyMathExpression", "inputs": {"expression": "1"}},
                                 "2": {"class_type": "PreviewAny", "inputs": {"source": ["1", 0]}}}).ok


def test_preview_any_text(session):
    assert value_of(session, "PrimitiveFloat", {"value": 0.5}) == 0.5
    result = run(session, {"1": {"class_type": "ResolutionSelector",
                                 "inputs": {"aspect_ratio": "1:1 (Square)", "megapixels": 1.0, "multiple": 8}},
                           "2": {"class_type": "PreviewAny", "inputs": {"source": ["1", 0]}}})
    assert result.ui_outputs["2"] == {"text": ["1024"]}
    assert logic.preview_text({"a": [1, 2]}) == '{"a": [1, 2]}'
    assert logic.preview_text(None) == "None"
    assert logic.preview_text(torch.zeros(1)) == str(torch.zeros(1))  # not JSON: str()


# ----------------------------------------------------------------------------------------------
# Image sizes


def columns(width, height, batch=1):
    """An image whose value at column x is x / 1000 (so resampled columns can be identified)."""
    ramp = torch.arange(width, dtype=torch.float32) / 1000
    return ramp.expand(batch, height, width).unsqueeze(-1).repeat(1, 1, 1, 3)


def test_get_image_size():
    assert GetImageSize(torch.zeros(2, 48, 64, 3)) == (64, 48, 2)


def test_image_scale_to_total_pixels_rounding():
    image = torch.zeros(1, 768, 512, 3)  # 512 wide, 768 high
    # scale = sqrt(1048576 / (512 * 768)) = 1.63299: 836.09 x 1254.14
    assert ImageScaleToTotalPixels(image, "nearest-exact", 1.0, 1).shape == (1, 1254, 836, 3)
    # to multiples of 16: round(52.26) * 16 x round(78.38) * 16
    assert ImageScaleToTotalPixels(image, "area", 1.0, 16).shape == (1, 1248, 832, 3)


def resized(pixels, resize_type, method="nearest-exact", **options):
    return ResizeImageMaskNode(pixels, resize_type=resize_type, scale_method=method,
                               **{f"resize_type.{k}": v for k, v in options.items()})


def test_resize_image_mask_types():
    wide = torch.zeros(1, 50, 200, 3)  # 200 x 50
    assert resized(wide, "scale longer dimension", longer_size=100).shape == (1, 25, 100, 3)
    assert resized(wide, "scale shorter dimension", shorter_size=100).shape == (1, 100, 400, 3)
    assert resized(torch.zeros(1, 40, 60, 3), "scale width", width=30).shape == (1, 20, 30, 3)
    assert resized(torch.zeros(1, 40, 60, 3), "scale height", height=20).shape == (1, 20, 30, 3)
    assert resized(torch.zeros(1, 8, 6), "scale by multiplier", multiplier=0.5).shape == (1, 4, 3)  # a MASK
    # int(0.01 * 1048576) = 10485 pixels: scale sqrt(10485 / 5000) = 1.4481 -> 144.81 x 72.41
    assert resized(torch.zeros(1, 50, 100, 3), "scale total pixels", megapixels=0.01).shape == (1, 72, 145, 3)
    assert resized(wide, "match size", match=torch.zeros(1, 10, 20), crop="disabled").shape == (1, 10, 20, 3)
    # 30 x 21 to multiples of 8 (24 x 16): cover at 24 x ceil(21 * 0.8) = 24 x 17, then crop the centre row span
    assert resized(torch.zeros(1, 21, 30, 3), "scale to multiple", multiple=8).shape == (1, 16, 24, 3)
    unchanged = torch.rand(1, 7, 9, 3)
    assert resized(unchanged, "scale dimensions", width=0, height=0, crop="center") is unchanged


def test_resize_dimensions_centre_crop():
    # 64 x 32 to 16 x 16 with a centre crop: columns 16..47 kept, then nearest-exact takes every
    # second one at its centre, 16 + 2i + 1
    out = resized(columns(64, 32), "scale dimensions", width=16, height=16, crop="center")
    expected = (16 + 2 * torch.arange(16) + 1).float() / 1000
    assert out.shape == (1, 16, 16, 3) and torch.allclose(out[0, 0, :, 0], expected)


def test_resize_image_mask_api_inputs_follow_the_chosen_type(session):
    def workflow(**inputs):
        return {"1": {"class_type": "ResizeImageMaskNode",
                      "inputs": {"input": ["9", 0], "scale_method": "area", **inputs}},
                "9": {"class_type": "LoadImage", "inputs": {"image": "x.png"}},
                "2": {"class_type": "PreviewImage", "inputs": {"images": ["1", 0]}}}

    (session.config.input_dir).mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (8, 4)).save(session.config.input_dir / "x.png")
    assert session.validate(workflow(**{"resize_type": "scale total pixels", "resize_type.megapixels": 1.0})).ok
    missing = session.validate(workflow(**{"resize_type": "scale dimensions", "resize_type.width": 8}))
    assert [e["extra_info"]["input_name"] for e in missing.report.node_errors["1"]["errors"]] == \
        ["resize_type.height", "resize_type.crop"]


@pytest.mark.parametrize("values, expected", [
    (["scale dimensions", 512, 512, "center", "area"],
     {"resize_type": "scale dimensions", "resize_type.width": 512, "resize_type.height": 512,
      "resize_type.crop": "center", "scale_method": "area"}),
    (["scale total pixels", 1.6, "area"],
     {"resize_type": "scale total pixels", "resize_type.megapixels": 1.6, "scale_method": "area"}),
    (["scale longer dimension", 1024, "lanczos"],
     {"resize_type": "scale longer dimension", "resize_type.longer_size": 1024, "scale_method": "lanczos"}),
    (["scale by multiplier", 4, "lanczos"],
     {"resize_type": "scale by multiplier", "resize_type.multiplier": 4, "scale_method": "lanczos"}),
])
def test_resize_image_mask_template_widgets(session, values, expected):
    assert widgets(session, "ResizeImageMaskNode", values) == expected


@pytest.mark.parametrize("ratio, megapixels, multiple, expected", [
    ("1:1 (Square)", 1.0, 8, (1024, 1024)),
    ("16:9 (Widescreen)", 1.0, 8, (1368, 768)),  # scale 85.33: 1365.3 / 8 = 170.67 -> 171 * 8; 768
    ("16:9 (Widescreen)", 0.4, 32, (864, 480)),  # scale 53.97: 863.5 / 32 = 26.98 -> 27; 485.7 / 32 = 15.18 -> 15
    ("9:16 (Portrait Widescreen)", 1.0, 8, (768, 1368)),
])
def test_resolution_selector(session, ratio, megapixels, multiple, expected):
    inputs = {"aspect_ratio": ratio, "megapixels": megapixels, "multiple": multiple}
    assert (value_of(session, "ResolutionSelector", inputs, 0), value_of(session, "ResolutionSelector", inputs, 1)) \
        == expected
    assert widgets(session, "ResolutionSelector", [ratio, megapixels, multiple]) == inputs


def test_batch_images_pads_alpha_and_resizes_to_the_first():
    batch = BatchImagesNode(**{"images.image0": torch.zeros(2, 4, 4, 3), "images.image1": torch.ones(1, 8, 8, 4)})
    assert batch.shape == (3, 4, 4, 4)
    assert torch.equal(batch[:2, ..., :3], torch.zeros(2, 4, 4, 3))
    assert torch.equal(batch[:2, ..., 3], torch.ones(2, 4, 4))  # the added alpha
    assert torch.allclose(batch[2], torch.ones(4, 4, 4))
    ordered = BatchImagesNode(**{"images.image10": torch.full((1, 2, 2, 3), 10.0),
                                 "images.image2": torch.full((1, 2, 2, 3), 2.0)})
    assert ordered[:, 0, 0, 0].tolist() == [2.0, 10.0]  # image2 before image10
    single = torch.rand(1, 3, 3, 3)  # api_google_gemini_image links only images.image0
    assert torch.equal(BatchImagesNode(**{"images.image0": single}), single)


# ----------------------------------------------------------------------------------------------
# Image outputs


def test_image_compare_and_save_image_advanced(session):
    pixels = np.zeros((2, 3, 3), dtype=np.uint8)
    pixels[..., 0] = 128
    session.config.input_dir.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels).save(session.config.input_dir / "red.png")
    workflow = {"1": {"class_type": "LoadImage", "inputs": {"image": "red.png"}},
                "2": {"class_type": "ImageCompare", "inputs": {"image_a": ["1", 0]}},
                "3": {"class_type": "SaveImageAdvanced",
                      "inputs": {"images": ["1", 0], "filename_prefix": "adv", "format": "png",
                                 "format.bit_depth": "8-bit", "format.input_color_space": "sRGB"}},
                "4": {"class_type": "SaveImageAdvanced",
                      "inputs": {"images": ["1", 0], "filename_prefix": "deep", "format": "png",
                                 "format.bit_depth": "16-bit", "format.input_color_space": "sRGB"}}}
    result = run(session, workflow)
    compare = result.ui_outputs["2"]
    assert compare["b_images"] == [] and compare["a_images"][0]["type"] == "temp"
    assert compare["a_images"][0]["filename"].startswith("comfy.compare.a_temp_")

    saved = result.ui_outputs["3"]["images"][0]
    assert (saved["filename"], saved["type"]) == ("adv_00001_.png", "output")
    with Image.open(session.config.output_dir / "adv_00001_.png") as png:
        assert np.array_equal(np.asarray(png), pixels)
        assert json.loads(png.text["prompt"])["3"]["inputs"]["format"] == "png"

    # 128 / 255 * 65535 = 32896 exactly; the 16-bit file is read back chunk by chunk
    data = (session.config.output_dir / result.ui_outputs["4"]["images"][0]["filename"]).read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    chunks, at = {}, 8
    while at < len(data):
        length, kind = struct.unpack(">I4s", data[at:at + 8])
        chunks.setdefault(kind, []).append(data[at + 8:at + 8 + length])
        at += 12 + length
    width, height, depth, colour = struct.unpack(">IIBB", chunks[b"IHDR"][0][:10])
    assert (width, height, depth, colour) == (3, 2, 16, 2)
    rows = np.frombuffer(zlib.decompress(b"".join(chunks[b"IDAT"])), np.uint8).reshape(height, 1 + width * 6)
    assert (rows[:, 0] == 0).all()
    decoded = rows[:, 1:].copy().view(">u2").reshape(height, width, 3)
    assert (decoded[..., 0] == 32896).all() and (decoded[..., 1:] == 0).all()
    assert any(text.startswith(b"prompt\0") for text in chunks[b"tEXt"])


def test_save_image_advanced_template_widgets(session):
    assert widgets(session, "SaveImageAdvanced", ["Qwen_image_2.1", "png", "8-bit", "sRGB"]) == {
        "filename_prefix": "Qwen_image_2.1", "format": "png", "format.bit_depth": "8-bit",
        "format.input_color_space": "sRGB"}


# ----------------------------------------------------------------------------------------------
# ManualSigmas and CFGNorm


@pytest.mark.parametrize("text, expected", [
    ("14.6, 7.0, 0", [14.6, 7.0, 0.0]),
    ("1., 0.99375, 0.9875, 0.0", [1.0, 0.99375, 0.9875, 0.0]),  # template_ltx2_3_style_transition
    ("0.85 0.7250\n0.4219, 0", [0.85, 0.725, 0.4219, 0.0]),
    ("-1, +2", [-1.0, 2.0]),
])
def test_manual_sigmas(text, expected):
    sigmas = ManualSigmas(text)
    assert sigmas.dtype == torch.float32 and sigmas.tolist() == torch.tensor(expected, dtype=torch.float32).tolist()


def scaling_model(x, sigma, c_crossattn):
    """A toy conditioned model: x0 = x times the (scalar) conditioning of each batch row."""
    return x * c_crossattn.reshape(-1, 1, 1, 1)


def guided(model_value, cfg):
    positive, negative = [[torch.full((1, 1, 1), 2.0), {}]], [[torch.full((1, 1, 1), 0.5), {}]]
    denoiser = guided_denoiser(scaling_model, positive, negative, cfg, (1, 4, 2, 2),
                               cfg_function=model_value.cfg_function, post_cfg=model_value.post_cfg)
    x = torch.randn(1, 4, 2, 2, generator=torch.Generator().manual_seed(0))
    return denoiser(x, torch.ones(1)), x


@pytest.mark.parametrize("strength, pre_cfg, factor", [
    # cond = 2x, uncond = 0.5x, cfg 3: plain CFG gives 0.5x + 3 * 1.5x = 5x
    (1.0, False, 2.0),  # post: 5x * clamp(|2x| / |5x|) = 2x
    (0.5, False, 1.0),
    # pre, in noise terms: cond x - 2x = -x, uncond 0.5x, blend 0.5x + 3 (-1.5x) = -4x, rescaled to -x
    (1.0, True, 2.0),  # x0 = x - (-x)
    (0.5, True, 3.5),  # noise 0.5 (-x) + 0.5 (-4x) = -2.5x
])
def test_cfg_norm_against_hand_computed_guidance(strength, pre_cfg, factor):
    model = CFGNorm(analytic_model(0, 1, 4, 1.0, "eps"), strength, pre_cfg)
    denoised, x = guided(model, cfg=3.0)
    assert torch.allclose(denoised, factor * x, atol=1e-5)


def test_cfg_norm_applies_without_guidance_and_in_a_workflow(session):
    model = CFGNorm(analytic_model(0, 1, 4, 1.0, "eps"), 0.5, False)
    denoised, x = guided(model, cfg=1.0)  # no unconditional pass: the hook still runs, on cond = 2x
    assert torch.allclose(denoised, x, atol=1e-5)

    # One Euler step from sigma_max to 0 lands on the (patched) x0: 0.5 x the mixture's x0 of the
    # initial latent, noise * sqrt(1 + sigma_max^2) with ComfyUI's seeded noise.
    workflow = base(sampler="euler", scheduler="karras", steps=1, cfg=1.0, size=32)
    workflow["7"] = {"class_type": "CFGNorm", "inputs": {"model": ["1", 0], "strength": 0.5}}
    workflow["4"]["inputs"]["model"] = ["7", 0]
    latent = output(session, run(session, workflow), "4")["samples"]
    sigma_max = 14.614642
    start = torch.randn((1, 4, 4, 4), generator=torch.manual_seed(SEED)) * math.sqrt(1 + sigma_max ** 2)
    x0 = analytic_model(0, 3, 4, 1.0, "eps").denoiser()(start, torch.full((1,), sigma_max))
    assert torch.allclose(latent, 0.5 * x0, atol=1e-4)


def test_cfg_norm_widgets(session):
    assert widgets(session, "CFGNorm", [1, False]) == {"strength": 1, "pre_cfg": False}
    # hidream_e1_1, saved before pre_cfg existed: the front end gives the new widget its default
    assert widgets(session, "CFGNorm", [1]) == {"strength": 1, "pre_cfg": False}
