"""`sigmagraph serve`: runs the application until Ctrl+C or SIGTERM."""

from __future__ import annotations

import asyncio
import signal
import sys

from aiohttp import web

from ..session import Session
from .app import create_app
from .options import ServerOptions
from .ray_workers import RayMissing


def _url(address: tuple) -> str:
    host, port = address[0], address[1]
    return f"http://[{host}]:{port}/" if ":" in host else f"http://{host}:{port}/"


async def _serve(session: Session, options: ServerOptions) -> None:
    runner = web.AppRunner(create_app(session.config, session, options), access_log=None)
    await runner.setup()
    try:
        await web.TCPSite(runner, options.host, options.port).start()
        # the real address, so that --port 0 tells which port it got
        print(f"Sigmagraph server on {_url(runner.addresses[0])}", flush=True)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            try:
                loop.add_signal_handler(signum, stop.set)
            except (NotImplementedError, RuntimeError):  # Windows, or not the main thread
                pass
        await stop.wait()
    finally:
        await runner.cleanup()


def serve(session: Session, options: ServerOptions) -> int:
    """Serves until stopped; 0 on a clean stop, 1 if the address cannot be bound, 2 if Ray is asked for and missing."""
    try:
        asyncio.run(_serve(session, options))
    except RayMissing as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except OSError as e:
        print(f"error: cannot listen on {options.host}:{options.port}: {e.strerror or e} "
              "(choose another --port or --host)", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        pass
    return 0
