"""The HTTP and websocket server: ComfyUI's API over one prompt queue, plus the canvas editor's files.

    app = create_app(Config(), options=ServerOptions(port=8188))   # an aiohttp Application
    serve(Session(Config()), ServerOptions())                      # what `sigmagraph serve` runs
"""

from .app import create_app
from .options import ServerOptions
from .run import serve

__all__ = ["ServerOptions", "create_app", "serve"]
