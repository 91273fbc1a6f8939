"""A pack that talks to the front end as ComfyUI packs do: routes on PromptServer, messages with send_sync,
an on-prompt handler rewriting submitted prompts, and a web extension folder.
"""

from aiohttp import web

import nodes
from server import PromptServer

routes = PromptServer.instance.routes
# Loaded after comfy_pack, which purged the modules its own import loaded: ComfyUI's tables still list its nodes.
SEES_EARLIER_PACK = "FixtureLazySwitch" in nodes.NODE_CLASS_MAPPINGS


@routes.get("/fixture/hello")
async def hello(request):
    return web.json_response({"hello": request.query.get("name", "world")})


async def direct(request):
    return web.Response(text="added to the app itself")


PromptServer.instance.app.router.add_get("/fixture/direct", direct)


def sign_notes(json_data):
    """Replaces %client% in every FixtureNotify text by the submitting client's id."""
    for node in json_data.get("prompt", {}).values():
        if node.get("class_type") == "FixtureNotify":
            node["inputs"]["text"] = node["inputs"]["text"].replace("%client%", json_data.get("client_id") or "?")
    return json_data


PromptServer.instance.add_on_prompt_handler(sign_notes)


class Notify:
    """Tells its client the text (a JSON message and a progress text), and everyone that it ran."""

    @classmethod
    def INPUT_TYPES(s):
        return {"required": {"text": ("STRING", {"default": "hello"})}, "hidden": {"unique_id": "UNIQUE_ID"}}

    RETURN_TYPES = ("STRING",)
    FUNCTION = "notify"
    OUTPUT_NODE = True
    CATEGORY = "fixture"

    def notify(self, text, unique_id=None):
        server = PromptServer.instance
        server.send_sync("fixture.note", {"node": unique_id, "text": text}, server.client_id)
        server.send_progress_text(text, unique_id, server.client_id)
        server.send_sync("fixture.ran", {"node": unique_id})
        return {"ui": {"text": (text,)}, "result": (text,)}


NODE_CLASS_MAPPINGS = {"FixtureNotify": Notify}
WEB_DIRECTORY = "./web"
