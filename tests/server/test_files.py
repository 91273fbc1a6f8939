"""GET /view and POST /upload/image: content types, previews, path confinement, upload rules."""

from __future__ import annotations

import os
from io import BytesIO

import aiohttp
import pytest
from PIL import Image

from .conftest import UPLOAD_LIMIT

pytestmark = pytest.mark.asyncio


def png_bytes(color=(255, 0, 0), size=(8, 8), fmt="PNG") -> bytes:
    buffer = BytesIO()
    Image.new("RGB", size, color).save(buffer, format=fmt)
    return buffer.getvalue()


def put(folder, name, data: bytes):
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def raw_upload(data: bytes, filename: str) -> tuple[bytes, dict[str, str]]:
    """A multipart body written by hand: aiohttp's own client would percent-encode a '/' in the name."""
    body = (b'--b0undary\r\nContent-Disposition: form-data; name="image"; filename="' + filename.encode() + b'"\r\n'
            b"Content-Type: image/png\r\n\r\n" + data + b"\r\n--b0undary--\r\n")
    return body, {"Content-Type": "multipart/form-data; boundary=b0undary"}


def form(data: bytes, filename: str = "photo.png", **fields: str) -> aiohttp.FormData:
    body = aiohttp.FormData()
    body.add_field("image", data, filename=filename, content_type="application/octet-stream")
    for key, value in fields.items():
        body.add_field(key, value)
    return body


@pytest.mark.parametrize("name,fmt,content_type", [("a.png", "PNG", "image/png"), ("b.jpg", "JPEG", "image/jpeg"),
                                                   ("c.webp", "WEBP", "image/webp"), ("d.gif", "GIF", "image/gif")])
async def test_view_serves_raster_images_inline(client, config, name, fmt, content_type):
    data = png_bytes(fmt=fmt)
    put(config.output_dir, name, data)
    response = await client.get("/view", params={"filename": name, "type": "output"})
    assert response.status == 200 and response.headers["Content-Type"] == content_type
    assert response.headers["Content-Disposition"].startswith("inline;")
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert await response.read() == data


@pytest.mark.parametrize("name", ["x.svg", "x.html", "x.js", "x.txt", "noext"])
async def test_view_serves_everything_else_as_a_download(client, config, name):
    put(config.output_dir, name, b"<svg xmlns='http://www.w3.org/2000/svg'><script>alert(1)</script></svg>")
    response = await client.get("/view", params={"filename": name})
    assert response.status == 200 and response.headers["Content-Type"] == "application/octet-stream"
    assert response.headers["Content-Disposition"].startswith("attachment;")
    assert "sandbox" in response.headers["Content-Security-Policy"]


async def test_view_types_subfolders_and_dotted_names(client, config):
    put(config.input_dir, "in.png", png_bytes((1, 2, 3)))
    put(config.temp_dir, "t.png", png_bytes((4, 5, 6)))
    put(config.output_dir / "sub" / "deeper", "a..b.png", png_bytes((7, 8, 9)))
    assert (await client.get("/view", params={"filename": "in.png", "type": "input"})).status == 200
    assert (await client.get("/view", params={"filename": "t.png", "type": "temp"})).status == 200
    ok = await client.get("/view", params={"filename": "a..b.png", "subfolder": "sub/deeper"})
    assert ok.status == 200 and Image.open(BytesIO(await ok.read())).getpixel((0, 0)) == (7, 8, 9)


async def test_view_preview_reencodes(client, config):
    put(config.output_dir, "big.png", png_bytes(size=(64, 64)))
    webp = await client.get("/view", params={"filename": "big.png", "preview": "webp;50"})
    assert webp.status == 200 and webp.headers["Content-Type"] == "image/webp"
    assert Image.open(BytesIO(await webp.read())).format == "WEBP"
    jpeg = await client.get("/view", params={"filename": "big.png", "preview": "jpeg"})
    assert Image.open(BytesIO(await jpeg.read())).format == "JPEG"
    put(config.output_dir, "fake.png", b"<html>not an image</html>")
    bad = await client.get("/view", params={"filename": "fake.png", "preview": "webp;90"})
    assert bad.status == 415 and "not a PNG" in (await bad.json())["error"]["message"]
    wrong = await client.get("/view", params={"filename": "big.png", "preview": "bmp;1"})
    assert wrong.status == 400


@pytest.mark.parametrize("params,status", [
    ({"filename": "../secret.png"}, 403),
    ({"filename": "ok.png", "subfolder": "../.."}, 403),
    ({"filename": "/etc/passwd"}, 403),
    ({"filename": "ok.png", "subfolder": "/etc"}, 403),
    ({"filename": "ok\x00.png"}, 403),
    ({"filename": "..\\secret.png"}, 403),
    ({"filename": "ok.png", "type": "models"}, 400),
    ({"filename": ""}, 400),
    ({}, 400),
    ({"filename": "missing.png"}, 404),
])
async def test_view_refuses_bad_paths(client, config, tmp_path, params, status):
    put(tmp_path, "secret.png", png_bytes())
    put(config.output_dir, "ok.png", png_bytes())
    response = await client.get("/view", params=params)
    assert response.status == status
    assert (await response.json())["error"]["message"]


async def test_view_refuses_symlinks_out(client, config, tmp_path):
    outside = put(tmp_path / "elsewhere", "secret.png", png_bytes())
    config.output_dir.mkdir(parents=True, exist_ok=True)
    os.symlink(outside, config.output_dir / "link.png")
    os.symlink(outside.parent, config.output_dir / "linkdir")
    for params in ({"filename": "link.png"}, {"filename": "secret.png", "subfolder": "linkdir"}):
        response = await client.get("/view", params=params)
        assert response.status == 403 and "outside" in (await response.json())["error"]["message"]
    os.symlink(config.output_dir / "ok.png", config.output_dir / "inside.png")
    put(config.output_dir, "ok.png", png_bytes())
    assert (await client.get("/view", params={"filename": "inside.png"})).status == 200


async def test_upload_then_view(client, config):
    data = png_bytes((10, 20, 30))
    response = await client.post("/upload/image", data=form(data, "photo.png", subfolder="mine"))
    assert response.status == 200
    assert await response.json() == {"name": "photo.png", "subfolder": "mine", "type": "input"}
    assert (config.input_dir / "mine" / "photo.png").read_bytes() == data
    view = await client.get("/view", params={"filename": "photo.png", "subfolder": "mine", "type": "input"})
    assert await view.read() == data


async def test_upload_same_name_different_content_gets_a_number(client, config):
    first, second = png_bytes((1, 1, 1)), png_bytes((2, 2, 2))
    names = []
    for data in (first, first, second, second, png_bytes((3, 3, 3))):
        names.append((await (await client.post("/upload/image", data=form(data, "pic.png"))).json())["name"])
    assert names == ["pic.png", "pic.png", "pic (1).png", "pic (1).png", "pic (2).png"]
    assert (config.input_dir / "pic (1).png").read_bytes() == second
    over = await client.post("/upload/image", data=form(second, "pic.png", overwrite="true"))
    assert (await over.json())["name"] == "pic.png" and (config.input_dir / "pic.png").read_bytes() == second


async def test_upload_to_output_and_temp(client, config):
    for kind in ("output", "temp"):
        answer = await (await client.post("/upload/image", data=form(png_bytes(), "o.webp" if kind == "output"
                                                                     else "t.gif", type=kind))).json()
        assert answer["type"] == kind and (config.folder(kind) / answer["name"]).is_file()


@pytest.mark.parametrize("data,filename,status,phrase", [
    (b"<svg xmlns='http://www.w3.org/2000/svg'/>", "x.svg", 415, "only images"),
    (b"<html><script>alert(1)</script></html>", "x.png", 415, "not a valid"),
    (b"\x89PNG\r\n\x1a\n" + b"\x00" * 20, "truncated.png", 415, "not a valid"),
    (png_bytes(), "../escape.png", 400, "invalid file name"),
    (png_bytes(), "dir/escape.png", 400, "invalid file name"),
    (png_bytes(), r"..\\escape.png", 400, "invalid file name"),  # quoted-string escape: ..\escape.png
    (png_bytes(), "..", 400, "invalid file name"),
    (png_bytes(), "", 400, "image"),
])
async def test_upload_refuses_non_images_and_bad_names(client, config, data, filename, status, phrase):
    body, headers = raw_upload(data, filename)
    response = await client.post("/upload/image", data=body, headers=headers)
    assert response.status == status
    assert phrase in (await response.json())["error"]["message"]
    assert not any(config.input_dir.rglob("*.*")) if config.input_dir.exists() else True


@pytest.mark.parametrize("fields,status", [({"subfolder": "../out"}, 403), ({"subfolder": "/tmp"}, 403),
                                           ({"type": "models"}, 400), ({"overwrite": "perhaps"}, 400)])
async def test_upload_refuses_bad_fields(client, fields, status):
    response = await client.post("/upload/image", data=form(png_bytes(), "p.png", **fields))
    assert response.status == status and (await response.json())["error"]["message"]


async def test_upload_size_limit_is_413(client, config):
    huge = png_bytes() + b"\x00" * (UPLOAD_LIMIT + 10)
    response = await client.post("/upload/image", data=form(huge, "huge.png"))
    assert response.status == 413 and "--max-upload-size" in (await response.json())["error"]["message"]
    assert not (config.input_dir / "huge.png").exists()


async def test_upload_needs_a_file_field(client):
    no_file = await client.post("/upload/image", data={"image": "just text"})
    assert no_file.status == 400 and "file field named 'image'" in (await no_file.json())["error"]["message"]
    not_multipart = await client.post("/upload/image", json={"image": "x"})
    assert not_multipart.status == 400
    broken = await client.post("/upload/image", data=b"--xyz\r\nContent-Disposition: form-data; name=\"image\"\r\n",
                               headers={"Content-Type": "multipart/form-data; boundary=xyz"})
    assert broken.status == 400 and (await broken.json())["error"]["message"]
