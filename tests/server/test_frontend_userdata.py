"""User data and settings routes (ComfyUI's front end saves workflows there): answers, confinement, limits."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os

import pytest
import pytest_asyncio

from sigmagraph.engine.server import create_app
from sigmagraph.engine.server.userdata import USER_FILES

from .conftest import UPLOAD_LIMIT

pytestmark = pytest.mark.asyncio

WORKFLOW = {"nodes": [], "links": [], "version": 0.4}


@pytest.fixture
def state_dir(tmp_path):
    return tmp_path / "state"


@pytest.fixture
def user_folder(state_dir):
    """Where the default user's files must land: state/users/default (read here with plain file access)."""
    return state_dir / "users" / "default"


@pytest_asyncio.fixture
async def client(aiohttp_client, config, session, options, state_dir):
    return await aiohttp_client(create_app(config, session, dataclasses.replace(options, state_dir=state_dir)))


async def save(client, name: str, body: bytes, **query) -> dict | str:
    response = await client.post(f"/api/userdata/{name}", data=body, params=query)
    assert response.status == 200, await response.text()
    return await response.json()


async def test_users_is_a_single_user_server(client):
    assert await (await client.get("/api/users")).json() == {"storage": "server", "migrated": True}


async def test_a_workflow_saved_through_the_api_is_a_file_in_the_users_folder(client, user_folder):
    body = json.dumps(WORKFLOW).encode()
    info = await save(client, "workflows%2Fmy%20flow.json", body, overwrite="true", full_info="true")
    on_disk = user_folder / "workflows" / "my flow.json"
    assert on_disk.read_bytes() == body
    assert info["path"] == "workflows/my flow.json" and info["size"] == len(body)
    assert info["modified"] == int(on_disk.stat().st_mtime * 1000)  # milliseconds, as ComfyUI answers
    assert await save(client, "workflows%2Fother.json", b"{}") == "workflows/other.json"

    response = await client.get("/api/userdata/workflows%2Fmy%20flow.json")
    assert response.status == 200 and await response.read() == body
    assert response.headers["Content-Type"] == "application/json"
    assert response.headers["Content-Disposition"].startswith("attachment")


async def test_listing_as_comfyui_answers(client, user_folder):
    for name in ("workflows%2Fa.json", "workflows%2Fdeep%2Fb.json"):
        await save(client, name, b"{}")
    listed = await (await client.get("/api/userdata", params={"dir": "workflows", "recurse": "true"})).json()
    assert listed == ["a.json", "deep/b.json"]
    flat = await (await client.get("/api/userdata", params={"dir": "workflows"})).json()
    assert flat == ["a.json"]
    split = await (await client.get("/api/userdata", params={"dir": "workflows", "recurse": "true",
                                                             "split": "true"})).json()
    assert split == [["a.json", "a.json"], ["deep/b.json", "deep", "b.json"]]
    full = await (await client.get("/api/userdata", params={"dir": "workflows", "recurse": "true",
                                                            "full_info": "true"})).json()
    assert [(f["path"], f["size"]) for f in full] == [("a.json", 2), ("deep/b.json", 2)]
    assert (await client.get("/api/userdata", params={"dir": "nothing"})).status == 404
    assert (await client.get("/api/userdata")).status == 400

    tree = await (await client.get("/api/v2/userdata")).json()
    # ComfyUI's order: folders first, then by name
    assert [(e["path"], e["type"]) for e in tree] == [("workflows/deep", "directory"), ("workflows", "directory"),
                                                      ("workflows/a.json", "file"), ("workflows/deep/b.json", "file")]
    assert tree[2]["size"] == 2 and tree[2]["name"] == "a.json"
    assert (await client.get("/api/v2/userdata", params={"path": "workflows/a.json"})).status == 400
    assert (await client.get("/api/v2/userdata", params={"path": "nowhere"})).status == 404


async def test_overwrite_false_never_replaces(client, user_folder):
    await save(client, "workflows%2Fa.json", b"first")
    response = await client.post("/api/userdata/workflows%2Fa.json", data=b"second", params={"overwrite": "false"})
    assert response.status == 409
    assert (user_folder / "workflows" / "a.json").read_bytes() == b"first"
    await save(client, "workflows%2Fa.json", b"third")  # overwrite is the default
    assert (user_folder / "workflows" / "a.json").read_bytes() == b"third"


async def test_move_and_delete(client, user_folder):
    await save(client, "workflows%2Fa.json", b"a")
    await save(client, "workflows%2Fb.json", b"b")
    response = await client.post("/api/userdata/workflows%2Fa.json/move/workflows%2Fb.json",
                                 params={"overwrite": "false"})
    assert response.status == 409 and (user_folder / "workflows" / "b.json").read_bytes() == b"b"
    response = await client.post("/api/userdata/workflows%2Fa.json/move/archive%2Fc.json",
                                 params={"full_info": "true"})
    assert response.status == 200 and (await response.json())["path"] == "archive/c.json"
    assert not (user_folder / "workflows" / "a.json").exists()
    assert (user_folder / "archive" / "c.json").read_bytes() == b"a"
    assert (await client.post("/api/userdata/workflows%2Fgone.json/move/x.json")).status == 404

    assert (await client.delete("/api/userdata/archive%2Fc.json")).status == 204
    assert not (user_folder / "archive" / "c.json").exists()
    assert (await client.delete("/api/userdata/archive%2Fc.json")).status == 404


async def test_stored_markup_is_never_served_as_a_page(client):
    await save(client, "evil.html", b"<script>alert(1)</script>")
    response = await client.get("/api/userdata/evil.html")
    assert response.headers["Content-Type"] == "application/octet-stream"
    assert response.headers["Content-Disposition"].startswith("attachment")
    assert "sandbox" in response.headers["Content-Security-Policy"]
    await save(client, "user.css", b"body { color: red }")
    response = await client.get("/api/userdata/user.css")
    assert response.headers["Content-Type"] == "text/css" and response.headers["Content-Disposition"] == "inline"


TRAVERSALS = ["..%2Foutside.txt", "%2Fetc%2Fpasswd", "workflows%2F..%2F..%2F..%2Foutside.txt", "..",
              "..%5C..%5Coutside.txt", "a%00b"]


@pytest.mark.parametrize("name", TRAVERSALS)
async def test_names_cannot_leave_the_users_folder(client, state_dir, name):
    outside = state_dir.parent / "outside.txt"
    outside.write_bytes(b"keep")
    await save(client, "inside.json", b"{}")
    for method, path in (("GET", f"/api/userdata/{name}"), ("POST", f"/api/userdata/{name}"),
                         ("DELETE", f"/api/userdata/{name}"), ("POST", f"/api/userdata/inside.json/move/{name}"),
                         ("GET", f"/api/userdata?dir={name}"), ("GET", f"/api/v2/userdata?path={name}")):
        response = await client.request(method, path, data=b"overwritten")
        assert response.status in (400, 403, 404, 405), (method, path, response.status)  # 405: normalized away
    assert outside.read_bytes() == b"keep"
    assert sorted(os.listdir(state_dir.parent)) == ["outside.txt", "state"]


async def test_links_planted_in_the_folder_lead_nowhere(client, state_dir, user_folder):
    secret = state_dir.parent / "secret"
    secret.mkdir()
    (secret / "key.txt").write_bytes(b"secret")
    await save(client, "inside.json", b"{}")
    os.symlink(secret, user_folder / "link")
    assert (await client.get("/api/userdata/link%2Fkey.txt")).status == 403
    assert (await client.post("/api/userdata/link%2Fkey.txt", data=b"x")).status == 403
    assert (await client.get("/api/userdata", params={"dir": "link"})).status == 403
    assert (secret / "key.txt").read_bytes() == b"secret"


async def test_oversize_bodies_are_refused_and_nothing_is_written(client, user_folder):
    response = await client.post("/api/userdata/workflows%2Fbig.json", data=b"x" * (UPLOAD_LIMIT + 1))
    assert response.status == 413 and (await response.json())["error"]["type"] == "request_too_large"
    assert not (user_folder / "workflows" / "big.json").exists()
    response = await client.post("/api/settings", data=json.dumps({"x": "y" * UPLOAD_LIMIT}))
    assert response.status == 413


async def test_other_sites_cannot_write(client, user_folder):
    for path in ("/api/userdata/a.json", "/api/settings/Comfy.X", "/api/userdata/a.json/move/b.json"):
        response = await client.post(path, data=b"1", headers={"Origin": "http://evil.example"})
        assert response.status == 403
    assert not (user_folder / "a.json").exists() and not (user_folder / "comfy.settings.json").exists()


async def test_settings_round_trip_into_the_users_settings_file(client, user_folder):
    assert await (await client.get("/api/settings")).json() == {}
    assert await (await client.get("/api/settings/Comfy.Unknown")).json() is None
    assert (await client.post("/api/settings/Comfy.ColorPalette", json="light")).status == 200
    assert (await client.post("/api/settings", json={"Comfy.A": 1, "Comfy.B": {"x": [1]}})).status == 200
    assert await (await client.get("/api/settings/Comfy.ColorPalette")).json() == "light"
    expected = {"Comfy.ColorPalette": "light", "Comfy.A": 1, "Comfy.B": {"x": [1]}}
    assert await (await client.get("/api/settings")).json() == expected
    assert json.loads((user_folder / "comfy.settings.json").read_text()) == expected
    assert (await client.post("/api/settings", json=[1, 2])).status == 400
    assert (await client.post("/api/settings/Comfy.A", data=b"{not json")).status == 400


async def test_simultaneous_setting_writes_are_all_kept(client, user_folder):
    """The front end posts several settings at once at start-up: none may be lost."""
    responses = await asyncio.gather(*(client.post(f"/api/settings/Comfy.S{i}", json=i) for i in range(24)))
    assert all(r.status == 200 for r in responses)
    assert json.loads((user_folder / "comfy.settings.json").read_text()) == {f"Comfy.S{i}": i for i in range(24)}


async def test_a_server_without_a_state_folder_keeps_user_data_until_it_stops(aiohttp_client, config, session,
                                                                               options):
    app = create_app(config, session, options)  # the state lives in memory
    client = await aiohttp_client(app)
    await save(client, "a.json", b"{}")
    root = app[USER_FILES].root
    assert (root / "default" / "a.json").read_bytes() == b"{}"
    await client.close()
    assert not root.exists()
