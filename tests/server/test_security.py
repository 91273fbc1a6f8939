"""Browser protections (Host, Origin, Sec-Fetch-Site, CORS) and robustness against bad request bodies."""

from __future__ import annotations

import dataclasses
from unittest import mock

import aiohttp
import pytest
from aiohttp.test_utils import make_mocked_request

from sigmagraph.engine.server import create_app
from sigmagraph.engine.server.security import BrowserGuard

from .conftest import UPLOAD_LIMIT, simple

pytestmark = pytest.mark.asyncio


def port_of(client) -> int:
    return client.server.port


async def nothing_queued(client) -> bool:
    return (await (await client.get("/queue")).json()) == {"queue_running": [], "queue_pending": []}


@pytest.mark.parametrize("host,allowed", [
    ("127.0.0.1:{port}", True), ("localhost:{port}", True), ("LOCALHOST:{port}", True), ("[::1]:{port}", True),
    ("attacker.example:{port}", False),  # DNS rebinding: the attacker's name resolving to 127.0.0.1
    ("127.0.0.1.attacker.example:{port}", False), ("127.0.0.1:1", False), ("127.0.0.1", False),
    ("user@127.0.0.1:{port}", False), ("127.0.0.1:{port}/x", False), ("", False),
])
async def test_host_header_must_name_this_server(client, host, allowed):
    response = await client.get("/object_info", headers={"Host": host.format(port=port_of(client))})
    assert (response.status == 200) is allowed
    if not allowed:
        assert response.status == 403 and (await response.json())["error"]["type"] == "forbidden_host"


async def test_host_check_covers_state_changes_and_pages(client):
    evil = {"Host": f"rebound.example:{port_of(client)}"}
    assert (await client.post("/prompt", json={"prompt": simple()}, headers=evil)).status == 403
    assert (await client.get("/", headers=evil)).status == 403
    assert await nothing_queued(client)


@pytest.mark.parametrize("headers,reason", [
    ({"Origin": "http://evil.example"}, "not this server"),
    ({"Origin": "null"}, "Origin: null"),
    ({"Origin": "http://localhost:{port}"}, "not this server"),  # another origin, even if it is this machine
    ({"Origin": "http://127.0.0.1:1"}, "not this server"),
    ({"Origin": "file://"}, "not this server"),
    ({"Sec-Fetch-Site": "cross-site"}, "cross-site"),
    ({"Sec-Fetch-Site": "same-site"}, "same-site"),
    ({"Origin": "http://127.0.0.1:{port}", "Sec-Fetch-Site": "cross-site"}, "cross-site"),
])
async def test_cross_site_state_changes_are_refused(client, headers, reason):
    headers = {k: v.format(port=port_of(client)) for k, v in headers.items()}
    for path, body in (("/prompt", {"prompt": simple()}), ("/queue", {"clear": True}), ("/interrupt", {}),
                       ("/history", {"clear": True}), ("/free", {"free_memory": True})):
        response = await client.post(path, json=body, headers=headers)
        assert response.status == 403, path
        error = (await response.json())["error"]
        assert error["type"] == "forbidden_origin" and reason in error["message"]
        assert "--enable-cors-header" in error["message"]
    assert await nothing_queued(client)


async def test_same_origin_and_non_browser_clients_pass(client):
    same = {"Origin": f"http://127.0.0.1:{port_of(client)}", "Sec-Fetch-Site": "same-origin"}
    assert (await client.post("/prompt", json={"prompt": simple()}, headers=same)).status == 200
    assert (await client.post("/prompt", json={"prompt": simple()}, headers={"Sec-Fetch-Site": "none"})).status == 200
    assert (await client.post("/prompt", json={"prompt": simple()})).status == 200  # curl, scripts


async def test_cross_site_reads_get_no_cors_headers(client):
    response = await client.get("/object_info", headers={"Origin": "http://evil.example"})
    assert response.status == 200 and "Access-Control-Allow-Origin" not in response.headers
    assert response.headers["X-Frame-Options"] == "DENY"


async def test_websocket_from_another_site_is_refused(client):
    with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
        await client.ws_connect("/ws?clientId=x", origin="http://evil.example")
    assert refused.value.status == 403
    with pytest.raises(aiohttp.WSServerHandshakeError):
        await client.ws_connect("/ws", origin="null")
    ws = await client.ws_connect("/ws?clientId=x", origin=f"http://127.0.0.1:{port_of(client)}")
    assert (await ws.receive_json())["type"] == "status"
    await ws.close()


async def test_cors_origin_is_allowed_with_headers(aiohttp_client, config, session, options):
    trusted = "http://editor.example:3000"
    client = await aiohttp_client(create_app(config, session, dataclasses.replace(options, cors_origin=trusted)))
    response = await client.post("/prompt", json={"prompt": simple()},
                                 headers={"Origin": trusted, "Sec-Fetch-Site": "cross-site"})
    assert response.status == 200 and response.headers["Access-Control-Allow-Origin"] == trusted
    preflight = await client.options("/prompt", headers={"Origin": trusted, "Access-Control-Request-Method": "POST"})
    assert preflight.status == 204 and "POST" in preflight.headers["Access-Control-Allow-Methods"]
    assert "Content-Type" in preflight.headers["Access-Control-Allow-Headers"]
    other = await client.post("/prompt", json={"prompt": simple()}, headers={"Origin": "http://evil.example"})
    assert other.status == 403 and "Access-Control-Allow-Origin" not in other.headers
    rebound = await client.get("/object_info", headers={"Host": "evil.example:80", "Origin": trusted})
    assert rebound.status == 403  # naming one trusted origin keeps the DNS-rebinding check


async def test_cors_star_turns_the_browser_checks_off(aiohttp_client, config, session, options):
    client = await aiohttp_client(create_app(config, session, dataclasses.replace(options, cors_origin="*")))
    response = await client.post("/prompt", json={"prompt": simple()},
                                 headers={"Origin": "http://anything.example", "Host": "any.example"})
    assert response.status == 200 and response.headers["Access-Control-Allow-Origin"] == "http://anything.example"


@pytest.mark.parametrize("path,body,phrase", [
    ("/prompt", b"{not json", "not valid JSON"),
    ("/prompt", b"", "needs a JSON object body"),
    ("/prompt", b"[1, 2]", "invalid request body"),
    ("/prompt", b'{"prompt": "text"}', "prompt: Input should be a valid dictionary"),
    ("/prompt", b'{"client_id": "x"}', "prompt: Field required"),
    ("/prompt", b'{"prompt": {}, "front": "maybe"}', "front"),
    ("/prompt", b'{"prompt": {}, "client_id": 5}', "client_id"),
    ("/prompt", b'{"prompt": {}, "client_id": "bad id\\n"}', "client_id"),
    ("/prompt", b'{"prompt": {}, "number": "first"}', "number"),
    ("/prompt", b'{"prompt": {}, "number": NaN}', "number"),
    ("/prompt", b'{"prompt": {}, "extra_data": [1]}', "extra_data"),
    ("/prompt", b'{"prompt": {"1": "not a node"}}', "invalid_prompt"),
    ("/prompt", b'{"prompt": {"1": {"class_type": 5}}}', "invalid_prompt"),
    ("/prompt", b"\xff\xfe\xfa", "not valid JSON"),
    ("/prompt", b"[" * 100000, "not valid JSON"),
    ("/queue", b'{"delete": "abc"}', "delete"),
    ("/queue", b'{"clear": [1]}', "clear"),
    ("/history", b'{"delete": [{"a": 1}]}', "delete"),
    ("/interrupt", b'{"prompt_id": 5}', "prompt_id"),
    ("/interrupt", b"{oops", "not valid JSON"),
    ("/free", b'{"free_memory": "lots"}', "free_memory"),
])
async def test_bad_bodies_answer_400_with_a_message(client, path, body, phrase):
    response = await client.post(path, data=body, headers={"Content-Type": "application/json"})
    assert response.status == 400
    assert phrase in await response.text()
    assert await nothing_queued(client)


async def test_huge_json_body_is_413(client):
    response = await client.post("/prompt", data=b'{"prompt": "' + b"x" * (UPLOAD_LIMIT + 1) + b'"}',
                                 headers={"Content-Type": "application/json"})
    assert response.status == 413 and (await response.json())["error"]["type"] == "request_too_large"


async def test_unknown_routes_and_methods_answer_json(client):
    missing = await client.get("/api/nothing-here")
    assert missing.status == 404 and (await missing.json())["error"]["message"]
    wrong = await client.delete("/prompt")
    assert wrong.status == 405 and "allowed: GET, HEAD, POST" in (await wrong.json())["error"]["message"]
    query = await client.get("/view?filename=a.png&type=secrets")
    assert query.status == 400 and "type" in (await query.json())["error"]["message"]


@pytest.mark.parametrize("bound,sockname,host,allowed", [
    ("0.0.0.0", ("192.168.1.5", 8188), "192.168.1.5:8188", True),  # the LAN address a client connected to
    ("0.0.0.0", ("192.168.1.5", 8188), "0.0.0.0:8188", False),  # a wildcard is no host name
    ("0.0.0.0", ("192.168.1.5", 8188), "rebound.example:8188", False),
    ("studio.lan", ("192.168.1.5", 8188), "studio.lan:8188", True),  # the name given with --host
    ("::1", ("::1", 8188, 0, 0), "[::1]:8188", True),
])
async def test_host_names_for_other_bind_addresses(bound, sockname, host, allowed):
    transport = mock.Mock()
    transport.get_extra_info.side_effect = lambda key, default=None: sockname if key == "sockname" else default
    request = make_mocked_request("GET", "/queue", headers={"Host": host}, transport=transport)
    assert (BrowserGuard(bound).host_problem(request) is None) is allowed
