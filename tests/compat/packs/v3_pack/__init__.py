"""A V3 test pack, written as ComfyUI's documentation writes V3 nodes: `comfy_entrypoint` returns an
extension listing `io.ComfyNode` classes. Between them they use what the adapter must carry: a
DynamicCombo, an Autogrow, a MatchType, a combo, an optional input, a hidden unique_id, an async
`execute`, `fingerprint_inputs`, `validate_inputs`, UI payloads and progress reports, a node that
blocks execution and one that expands into a subgraph.
"""

import asyncio
from types import SimpleNamespace

import torch

from comfy_api.latest import ComfyAPISync, ComfyExtension, io, ui
from comfy_execution.graph_utils import GraphBuilder

LOADED = []  # the extension's on_load calls
SEEN = []  # (class run on, cls.hidden) of each ShowText call


class RepeatText(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="V3RepeatText", display_name="Repeat Text (V3)", category="testing/v3",
            description="Repeats a text, joined by a space or a separator of your choice.",
            search_aliases=["repeat"],
            inputs=[
                io.String.Input("text", default="hi", multiline=True),
                io.Int.Input("count", default=2, min=1, max=8, tooltip="how many times"),
                io.DynamicCombo.Input("joiner", options=[
                    io.DynamicCombo.Option("space", []),
                    io.DynamicCombo.Option("custom", [io.String.Input("separator", default="-")]),
                ]),
                io.Autogrow.Input("extra", template=io.Autogrow.TemplatePrefix(
                    io.String.Input("word"), prefix="word", min=0, max=3)),
            ],
            outputs=[io.String.Output(display_name="joined"), io.Int.Output("length")],
        )

    @classmethod
    def validate_inputs(cls, text):
        return True if text else "the text is empty"

    @classmethod
    def execute(cls, text, count, joiner, extra) -> io.NodeOutput:
        separator = " " if joiner["joiner"] == "space" else joiner["separator"]
        joined = separator.join([text] * count + [extra[k] for k in sorted(extra)])
        ComfyAPISync().execution.set_progress(1, 1)
        return io.NodeOutput(joined, len(joined))


class ShowText(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="V3ShowText", display_name="Show Text (V3)", category="testing/v3",
            inputs=[
                io.String.Input("text", force_input=True),
                io.Combo.Input("case", options=["upper", "lower", "keep"], default="keep"),
                io.Image.Input("image", optional=True),
            ],
            outputs=[io.String.Output()],
            hidden=[io.Hidden.unique_id],
            is_output_node=True,
        )

    @classmethod
    def fingerprint_inputs(cls, case, **kwargs):
        return float("nan") if case == "upper" else case  # upper-casing must run again every time

    @classmethod
    async def execute(cls, text, case, image=None) -> io.NodeOutput:
        await asyncio.sleep(0)
        SEEN.append((cls, cls.hidden))
        shown = {"upper": str.upper, "lower": str.lower, "keep": str}[case](text) + f" @{cls.hidden.unique_id}"
        if image is not None:
            shown += f" {list(image.shape)}"
        return io.NodeOutput(shown, ui=ui.PreviewText(shown))


class SolidImage(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(node_id="V3SolidImage", category="testing/v3",
                         inputs=[io.Int.Input("size", default=4, min=1, max=64),
                                 io.Float.Input("value", default=0.5, min=0.0, max=1.0, step=0.1)],
                         outputs=[io.Image.Output()])

    @classmethod
    def execute(cls, size, value) -> io.NodeOutput:
        return io.NodeOutput(torch.full((1, size, size, 3), value))


class PassImageOrMask(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        template = io.MatchType.Template("image_or_mask", [io.Image, io.Mask])
        return io.Schema(node_id="V3PassImageOrMask", category="testing/v3",
                         inputs=[io.MatchType.Input("value", template=template)],
                         outputs=[io.MatchType.Output(template, display_name="value")])

    @classmethod
    def execute(cls, value) -> io.NodeOutput:
        return io.NodeOutput(value)


class PreviewImage(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(node_id="V3PreviewImage", category="testing/v3", inputs=[io.Image.Input("images")],
                         is_output_node=True)

    @classmethod
    def execute(cls, images) -> io.NodeOutput:
        return io.NodeOutput(ui=ui.PreviewImage(images, cls=cls))


class ClassicCounter:
    """A classic class the extension lists too, with a GET_SCHEMA naming it (as ComfyUI-ppm does)."""

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"start": ("INT", {"default": 0})}}

    RETURN_TYPES = ("INT",)
    FUNCTION = "count"
    CATEGORY = "testing/v3"

    @staticmethod
    def GET_SCHEMA():
        return SimpleNamespace(node_id="V3PackClassic", display_name="Classic Counter")

    def count(self, start):
        return (start + 1,)


class Gate(io.ComfyNode):
    """Passes the text on when open; otherwise blocks everything downstream with a message."""

    @classmethod
    def define_schema(cls):
        return io.Schema(node_id="V3Gate", category="testing/v3",
                         inputs=[io.String.Input("text"), io.Boolean.Input("open", default=True)],
                         outputs=[io.String.Output()])

    @classmethod
    def execute(cls, text, open) -> io.NodeOutput:
        return io.NodeOutput(text) if open else io.NodeOutput(block_execution="the gate is closed")


class RepeatTwice(io.ComfyNode):
    """Expands into two chained V3RepeatText nodes (text repeated `count` times, twice over)."""

    @classmethod
    def define_schema(cls):
        return io.Schema(node_id="V3RepeatTwice", category="testing/v3", enable_expand=True,
                         inputs=[io.String.Input("text"), io.Int.Input("count", default=2, min=1)],
                         outputs=[io.String.Output()])

    @classmethod
    def execute(cls, text, count) -> io.NodeOutput:
        graph = GraphBuilder()
        first = graph.node("V3RepeatText", text=text, count=count, joiner="space")
        second = graph.node("V3RepeatText", text=first.out(0), count=count, joiner="space")
        return io.NodeOutput(second.out(0), expand=graph.finalize())


class PackExtension(ComfyExtension):
    async def on_load(self) -> None:
        LOADED.append("on_load")

    async def get_node_list(self) -> list[type[io.ComfyNode]]:
        return [RepeatText, ShowText, SolidImage, PassImageOrMask, PreviewImage, ClassicCounter, Gate, RepeatTwice]


async def comfy_entrypoint() -> PackExtension:
    return PackExtension()
