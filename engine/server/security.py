"""Browser-facing safety: who may reach the server and from which pages.

A server on localhost is reachable by every web page the user opens. Three checks keep those
pages out (each was a ComfyUI vulnerability):
- DNS rebinding: a page on an attacker's name that resolves to 127.0.0.1 sends its own name as
  Host. Only this server's addresses (and localhost / 127.0.0.1 / [::1]) with its port pass.
- CSRF: a page on another site can send POSTs and open websockets (but not read answers).
  State-changing requests and websockets whose Origin is another origin, or `null` (sandboxed
  frames, file://), or whose Sec-Fetch-Site says cross-site / same-site, are refused.
- Non-browser clients (curl, scripts) send neither header and pass.
`--enable-cors-header ORIGIN` lets that origin call from a browser (with CORS headers); `*`
turns every browser check off.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from aiohttp import web

from .errors import error_response

STATE_CHANGING = {"POST", "PUT", "PATCH", "DELETE"}
LOOPBACK_NAMES = {"localhost", "127.0.0.1", "::1"}
WILDCARD_ADDRESSES = {"", "0.0.0.0", "::"}  # binding to all interfaces names no host
DEFAULT_PORTS = {"http": 80, "https": 443, "ws": 80, "wss": 443}


def _host_port(authority: str, scheme: str = "http") -> tuple[str, int] | None:
    """(lowercase host without brackets, port with the scheme's default) from `host[:port]`; None if malformed."""
    try:
        parts = urlsplit(f"//{authority}")
        port = parts.port
    except ValueError:
        return None
    if not parts.hostname or parts.netloc != authority or "@" in authority:
        return None
    return parts.hostname.lower(), port if port is not None else DEFAULT_PORTS.get(scheme, 80)


def _origin(origin: str) -> tuple[str, int] | None:
    """(host, port) of an Origin header like `http://127.0.0.1:8188`; None if it is not one."""
    parts = urlsplit(origin)
    if parts.scheme not in DEFAULT_PORTS or parts.path not in ("", "/"):
        return None
    return _host_port(parts.netloc, parts.scheme)


def _is_websocket(request: web.Request) -> bool:
    return request.headers.get("Upgrade", "").lower() == "websocket"


@dataclass(frozen=True)
class BrowserGuard:
    """The Host, Origin and Sec-Fetch-Site checks, and CORS headers for the one allowed origin."""

    bound_host: str
    cors_origin: str | None = None

    def _cors_allows(self, origin: str | None) -> bool:
        return origin is not None and self.cors_origin is not None and (
            self.cors_origin == "*" or origin.rstrip("/") == self.cors_origin.rstrip("/"))

    def host_problem(self, request: web.Request) -> str | None:
        """Why the Host header does not name this server (DNS rebinding), or None."""
        if self.cors_origin == "*":
            return None
        raw = request.headers.get("Host")
        host = _host_port(raw) if raw else None
        if host is None:
            return f"the request's Host header {raw!r} is missing or malformed"
        sockname = request.transport.get_extra_info("sockname") if request.transport else None
        names = LOOPBACK_NAMES | {self.bound_host.strip("[]").lower()}
        if sockname:
            names.add(str(sockname[0]).lower())
        names -= WILDCARD_ADDRESSES
        if host[0] not in names or (sockname and host[1] != sockname[1]):
            port = sockname[1] if sockname else ""
            return (f"Host {raw!r} is not this server's address, so the request was refused (protection "
                    f"against DNS rebinding); open http://127.0.0.1:{port}/ or the address given with --host")
        return None

    def origin_problem(self, request: web.Request) -> str | None:
        """Why a state-changing request or websocket comes from another site's page, or None."""
        origin = request.headers.get("Origin")
        if self._cors_allows(origin):
            return None
        hint = "; to allow a trusted page, start the server with --enable-cors-header ORIGIN"
        site = request.headers.get("Sec-Fetch-Site", "").lower()
        if site in ("cross-site", "same-site"):
            return f"refused a {site} request from a browser page (Sec-Fetch-Site: {site}){hint}"
        if origin is None:
            return None  # not sent by a browser page: curl, scripts, ComfyUI's API examples
        if origin == "null":
            return f"refused a request with Origin: null (a sandboxed frame or a local file){hint}"
        host = _host_port(request.headers.get("Host", ""))
        if _origin(origin) is None or _origin(origin) != host:
            return f"refused a request from the page at {origin}, which is not this server{hint}"
        return None

    def cors_headers(self, origin: str) -> dict[str, str]:
        """The CORS headers that let `origin` (an allowed one) read answers and send JSON."""
        return {"Access-Control-Allow-Origin": origin, "Vary": "Origin",
                "Access-Control-Allow-Methods": "GET, POST, PUT, PATCH, DELETE, OPTIONS",
                "Access-Control-Allow-Headers": "Content-Type, Authorization"}

    @web.middleware
    async def middleware(self, request: web.Request, handler: Any) -> web.StreamResponse:
        """Refuses what the checks refuse (403, JSON), answers CORS preflights, adds safety headers."""
        if problem := self.host_problem(request):
            return error_response(403, problem, "forbidden_host")
        origin = request.headers.get("Origin")
        if request.method == "OPTIONS" and self._cors_allows(origin):
            return web.Response(status=204, headers=self.cors_headers(origin))
        if (request.method in STATE_CHANGING or _is_websocket(request)) and (problem := self.origin_problem(request)):
            return error_response(403, problem, "forbidden_origin")
        response = await handler(request)
        if not response.prepared:  # a websocket has sent its headers already
            response.headers.setdefault("X-Content-Type-Options", "nosniff")
            response.headers.setdefault("X-Frame-Options", "DENY")  # no clickjacking of the Queue button
            if self._cors_allows(origin):
                response.headers.update(self.cors_headers(origin))
        return response
