"""File routes: GET /view and POST /upload/image, confined to the input, output and temp folders.

Every name goes through `safe_join` (realpath under the root). /view serves raster images
inline with their own content type and everything else as a download, so a stored SVG or HTML
file can never run script in the server's origin. Uploads must be PNG, JPEG, WebP or GIF by
their bytes (Pillow reads the header), not merely by their name.
"""

from __future__ import annotations

import asyncio
import os
from io import BytesIO
from pathlib import Path
from urllib.parse import quote

from aiohttp import web
from PIL import Image

from ..paths import UnsafePath, safe_join
from .errors import ApiError, json_response, parse_query, validate_model
from .models import UploadForm, ViewQuery
from .state import STATE

INLINE_TYPES = {".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".webp": "image/webp",
                ".gif": "image/gif"}
RASTER_FORMATS = ("PNG", "JPEG", "WEBP", "GIF")  # Pillow may open only these: no plugin runs external tools


def safe_path(root: Path, *parts: str) -> Path:
    """`root/parts...` resolved inside `root`; 403 for anything that would leave it."""
    try:
        return safe_join(root, *parts)
    except UnsafePath as e:
        raise ApiError(403, f"refused: {e}", "forbidden_path") from None


def content_disposition(kind: str, filename: str) -> str:
    """`inline`/`attachment` with the name quoted safely (ASCII fallback plus RFC 5987 UTF-8 form)."""
    fallback = "".join(c if c.isascii() and c.isprintable() and c not in '"\\' else "_" for c in filename)
    return f"{kind}; filename=\"{fallback}\"; filename*=UTF-8''{quote(filename, safe='')}"


def send_file(path: Path, content_type: str | None, extra_headers: dict[str, str] | None = None) -> web.FileResponse:
    """A file response with an explicit content type (octet-stream when unknown)."""
    return web.FileResponse(path, headers={"Content-Type": content_type or "application/octet-stream",
                                           **(extra_headers or {})})


def _encode_preview(path: Path, image_format: str, quality: int) -> bytes:
    try:
        with Image.open(path, formats=RASTER_FORMATS) as image:
            image.load()
            converted = image.convert("RGB" if image_format == "JPEG" or image.mode not in ("RGBA", "LA") else "RGBA")
            buffer = BytesIO()
            converted.save(buffer, format=image_format, quality=quality)
            return buffer.getvalue()
    except (OSError, ValueError, Image.DecompressionBombError) as e:
        raise ApiError(415, f"{path.name} is not a PNG, JPEG, WebP or GIF image, so it has no preview ({e})",
                       "unsupported_media_type") from None


async def view(request: web.Request) -> web.StreamResponse:
    """GET /view?filename&subfolder&type[&preview=webp;90]: a file from the input, output or temp folder."""
    config = request.app[STATE].config
    query = parse_query(request, ViewQuery)
    path = safe_path(config.folder(query.type), query.subfolder, query.filename)
    if not path.is_file():
        raise ApiError(404, f"no file {query.filename!r} in the {query.type} folder"
                            + (f" (subfolder {query.subfolder!r})" if query.subfolder else ""), "not_found")
    name = os.path.basename(query.filename)
    sandbox = {"Content-Security-Policy": "default-src 'none'; sandbox", "Cache-Control": "no-cache"}
    if query.preview is not None:
        image_format, quality = query.preview_format()
        body = await asyncio.to_thread(_encode_preview, path, image_format, quality)
        return web.Response(body=body, content_type=f"image/{image_format.lower()}",
                            headers={"Content-Disposition": content_disposition("inline", name), **sandbox})
    content_type = INLINE_TYPES.get(path.suffix.lower())
    disposition = content_disposition("inline" if content_type else "attachment", name)
    return send_file(path, content_type, {"Content-Disposition": disposition, **sandbox})


def _check_image(data: bytes, filename: str) -> None:
    if Path(filename).suffix.lower() not in INLINE_TYPES:
        raise ApiError(415, f"{filename!r}: only images can be uploaded; name them .png, .jpg, .jpeg, .webp or .gif",
                       "unsupported_media_type")
    try:
        with Image.open(BytesIO(data), formats=RASTER_FORMATS) as image:
            image.verify()
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as e:
        raise ApiError(415, f"{filename!r} is not a valid PNG, JPEG, WebP or GIF image ({e})",
                       "unsupported_media_type") from None


def store_upload(folder: Path, filename: str, data: bytes, overwrite: bool) -> str:
    """Writes `data` as `filename` in `folder` and returns the name used.

    Without `overwrite`, an existing file with other content keeps its name and the upload
    becomes `name (1).ext`, `name (2).ext`...; one with the same content is reused.
    """
    stem, extension = os.path.splitext(filename)
    folder.mkdir(parents=True, exist_ok=True)
    candidate, counter = filename, 0
    while True:
        path = safe_path(folder, candidate)  # a link planted in the folder must not redirect the write
        if overwrite:
            path.write_bytes(data)
            return candidate
        try:
            with open(path, "xb") as file:  # exclusive: two uploads can never take the same name
                file.write(data)
            return candidate
        except FileExistsError:
            if path.is_file() and path.stat().st_size == len(data) and path.read_bytes() == data:
                return candidate
        counter += 1
        candidate = f"{stem} ({counter}){extension}"


def _upload_name(field: web.FileField) -> str:
    name = field.filename or ""
    if not name or name in (".", "..") or any(c in name for c in "/\\\x00") or len(name) > 255:
        raise ApiError(400, f"invalid file name {name!r}: give a plain name such as photo.png "
                            "(put folders in the 'subfolder' field)")
    return name


async def upload_image(request: web.Request) -> web.Response:
    """POST /upload/image (multipart: image, subfolder, type, overwrite) -> {name, subfolder, type}."""
    config = request.app[STATE].config
    try:
        form = await request.post()  # bounded by client_max_size: larger bodies raise 413
    except ValueError as e:
        raise ApiError(400, f"malformed multipart body: {e}") from None
    image = form.get("image")
    if not isinstance(image, web.FileField):
        raise ApiError(400, "send the image as a multipart/form-data file field named 'image'")
    fields = validate_model(UploadForm, {k: v for k, v in form.items() if k != "image" and isinstance(v, str)},
                            where="form")
    filename = _upload_name(image)
    folder = safe_path(config.folder(fields.type), fields.subfolder)
    data = await asyncio.to_thread(image.file.read)
    await asyncio.to_thread(_check_image, data, filename)
    name = await asyncio.to_thread(store_upload, folder, filename, data, fields.overwrite)
    return json_response({"name": name, "subfolder": fields.subfolder, "type": fields.type})
