"""A real server on a free loopback port, for tests that talk to it like a browser does."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

from aiohttp import web

from sigmagraph.engine import Config, Session
from sigmagraph.engine.server import ServerOptions, create_app


def folders_config(root: Path) -> Config:
    """A CPU configuration whose models, output, input and temp folders lie under `root`."""
    return Config(models_dir=root / "models", output_dir=root / "output", input_dir=root / "input",
                  temp_dir=root / "temp", device="cpu")


class LiveServer:
    """An aiohttp server on a free loopback port, run by an event loop in its own thread."""

    def __init__(self, session: Session, options: ServerOptions):
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.runner = web.AppRunner(create_app(session.config, session, options), access_log=None)
        self.url = ""

    def __enter__(self) -> "LiveServer":
        self.thread.start()

        async def start() -> int:
            await self.runner.setup()
            await web.TCPSite(self.runner, "127.0.0.1", 0).start()
            return self.runner.addresses[0][1]

        port = asyncio.run_coroutine_threadsafe(start(), self.loop).result(timeout=30)
        self.url = f"http://127.0.0.1:{port}/"
        return self

    def __exit__(self, *exc) -> None:
        asyncio.run_coroutine_threadsafe(self.runner.cleanup(), self.loop).result(timeout=30)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=10)
        self.loop.close()
