"""Uploads into the service: limits, decoding with a status code per failure, and scrubbed messages.

Every failure is an ``HTTPError`` whose message names the upload (the client's file name, never a
server path) and what was expected; ``scrub`` takes file-system paths and terminal control codes
out of any message.
"""
from __future__ import annotations

import asyncio
import io
import math
import re
import tempfile
import threading
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, fields
from pathlib import Path, PurePosixPath, PureWindowsPath

import numpy as np
import torch
from PIL import Image, ImageOps
from starlette.exceptions import HTTPException
from starlette.responses import JSONResponse
from torch import Tensor

from cnnlab.errors import CnnlabError
from cnnlab.files import replacing, write_bytes
from cnnlab.images import FORMATS, ImageError, read_image, to_pil
from cnnlab.serve.render import fit

_OPTION = {"max_upload_bytes": "--max-upload-mb", "max_pixels": "--max-pixels"}  # as `cnnlab serve` names them


@dataclass(frozen=True)
class Limits:
    """What one request may ask of the service."""

    max_upload_bytes: int = 20 * 2**20   # whole request body, bytes (413 above)
    max_pixels: int = 40_000_000         # width * height of an uploaded image (413 above)
    max_image_side: int = 1024           # predict, explain: longer side after downscaling, pixels
    max_convolve_side: int = 512         # convolve: longer side after downscaling, pixels
    max_kernels: int = 8                 # convolve: kernels per request
    max_kernel_side: int = 15            # convolve: largest kernel height or width
    max_decodes: int = 2                 # uploads decoded at once (the rest wait: memory stays flat)
    body_timeout: float = 30.0           # seconds for a request body to arrive (408 after)

    def __post_init__(self):
        """Every limit is above 0: a negative or zero one would refuse every request."""
        for f in fields(self):
            value = getattr(self, f.name)
            if not value > 0:
                shown = f"{value / 2**20:g}" if f.name == "max_upload_bytes" else value
                raise CnnlabError(f"{_OPTION.get(f.name, f'limits.{f.name}')} {shown}: expected a number above 0")


class HTTPError(Exception):
    """A client error with its HTTP status and a one-line reason."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


class BodyLimit:
    """ASGI middleware: a request body over ``max_bytes`` gets 413, by its Content-Length header
    before anything is read, or (chunked uploads) as soon as the bytes received pass the limit; a
    body not all received ``timeout`` seconds after the app first asks for it gets 408. Either way
    the connection closes (the rest of the body is never read)."""

    CLOSE = {"connection": "close"}

    def __init__(self, app, max_bytes: int, timeout: float):
        self.app, self.max_bytes, self.timeout = app, max_bytes, timeout

    def message(self) -> str:
        return f"request body over this service's limit of {self.max_bytes:,} bytes"

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        length = dict(scope["headers"]).get(b"content-length", b"")
        if length.isdigit() and int(length) > self.max_bytes:
            too_large = JSONResponse({"detail": self.message()}, status_code=413, headers=self.CLOSE)
            return await too_large(scope, receive, send)
        loop = asyncio.get_running_loop()
        seen, deadline, done = 0, None, False

        async def limited():
            nonlocal seen, deadline, done
            if done:  # after the body: disconnect notices, no deadline
                return await receive()
            deadline = deadline or loop.time() + self.timeout
            try:
                message = await asyncio.wait_for(receive(), deadline - loop.time())
            except asyncio.TimeoutError:  # FastAPI re-raises HTTPException from body parsing
                raise HTTPException(408, f"request body not received within {self.timeout:g} s",
                                    headers=self.CLOSE) from None
            done = not message.get("more_body", False)
            seen += len(message.get("body", b""))
            if seen > self.max_bytes:
                raise HTTPException(413, self.message(), headers=self.CLOSE)
            return message

        await self.app(scope, limited, send)


def client_name(filename: str | None) -> str:
    """The upload's base name as the client sent it (no folders), for messages and results."""
    name = PureWindowsPath(PurePosixPath(filename or "upload").name).name
    name = _CONTROL.sub("", name)[:100]
    return name or "upload"


@dataclass
class Upload:
    """One decoded upload: what the model (or convolve) sees, and what the client sent."""

    name: str             # the client's file name, no folders
    data: bytes           # the bytes as sent
    image: Tensor         # uint8 (C, H, W), scaled down to the endpoint's longer side
    size: tuple[int, int]  # (H, W) as sent, EXIF orientation applied

    @property
    def resized(self) -> dict | None:
        """``{"from": [H, W], "to": [h, w]}`` when the image was scaled down (coordinates in a
        result, such as boxes, are in the ``to`` image's pixels), else None."""
        to = tuple(self.image.shape[-2:])
        return None if to == self.size else {"from": list(self.size), "to": list(to)}

    def reply(self) -> dict:
        """``{"resized": ...}`` for a reply about an image the service scaled down, else {}."""
        return {"resized": self.resized} if self.resized else {}


@dataclass
class Uploads:
    """The service's limits, and uploads read through them: each decoded and scaled down while no
    more than ``limits.max_decodes`` others are (the rest wait: memory stays flat)."""

    limits: Limits
    decodes: threading.BoundedSemaphore = field(init=False)

    def __post_init__(self):
        self.decodes = threading.BoundedSemaphore(self.limits.max_decodes)

    def read(self, file, max_side: int, channels: int | None = None) -> Upload:
        """An ``UploadFile`` read, decoded and scaled down to ``max_side`` on its longer side."""
        with self.decodes:
            return decode_upload(file.file.read(), client_name(file.filename), self.limits, max_side, channels)


def decode_upload(data: bytes, name: str, limits: Limits, max_side: int, channels: int | None = None) -> Upload:
    """Raw upload bytes -> an ``Upload`` no larger than ``max_side`` on its longer side; 422 empty,
    413 over ``max_pixels``, 415 not an image. A large JPEG is decoded at a reduced scale, so it
    never takes its full size in memory."""
    if not data:
        raise HTTPError(422, f"{name}: empty upload (0 bytes); send an image file")
    size = _header_size(data)
    if size and size[0] * size[1] > limits.max_pixels:
        w, h = size
        raise HTTPError(413, f"{name}: image is {w}x{h} = {w * h:,} pixels, over this service's "
                             f"limit of {limits.max_pixels:,}")
    drafted = _draft_jpeg(data, max_side, channels) if size and max(size) > max_side else None
    if drafted is not None:
        image, original = drafted
    else:
        try:
            image = read_image(data, channels=channels, max_pixels=limits.max_pixels, name=name)
        except ImageError as e:
            raise HTTPError(415, scrub(str(e))) from None
        original = tuple(image.shape[-2:])
    return Upload(name, data, fit(image, max_side), original)


def _draft_jpeg(data: bytes, max_side: int, channels: int | None) -> tuple[Tensor, tuple[int, int]] | None:
    """A JPEG decoded at 1/2, 1/4 or 1/8 scale, the smallest that keeps ``max_side`` (Pillow's draft:
    the decoder skips the rest), EXIF-oriented, as uint8 (C, h, w) with its full (H, W); None for
    other formats and for files it cannot decode (``read_image`` then names the problem)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data), formats=("JPEG",)) as jpeg:
                w, h = jpeg.size
                swap = jpeg.getexif().get(0x0112) in (5, 6, 7, 8)  # EXIF orientations that swap the axes
                scale = max_side / max(w, h)
                jpeg.draft(jpeg.mode, (math.ceil(w * scale), math.ceil(h * scale)))
                img = ImageOps.exif_transpose(jpeg)  # decodes
                full = (w, h) if swap else (h, w)
    except (OSError, SyntaxError, ValueError, EOFError, Image.DecompressionBombError):
        return None
    mode = {1: "L", 3: "RGB", 4: "RGBA"}.get(channels) or ("L" if img.mode == "L" else "RGB")
    a = np.array(img.convert(mode))  # (h, w) or (h, w, C)
    return torch.from_numpy(a.reshape(a.shape[0], a.shape[1], -1)).permute(2, 0, 1).contiguous(), full


def _header_size(data: bytes) -> tuple[int, int] | None:
    """(width, height) from the image header alone, or None when Pillow cannot identify it."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data), formats=FORMATS) as img:
                return img.size
    except Exception:  # not an image: decode_upload's read_image gives the reason
        return None


@contextmanager
def request_folder() -> Iterator[Path]:
    """A temporary folder of one request's own (its upload, the figures a task draws), then gone."""
    with tempfile.TemporaryDirectory(prefix="cnnlab-serve-") as tmp:
        yield Path(tmp)


def save_upload(upload: Upload, folder: Path) -> Path:
    """The upload as a file in the request's own temporary ``folder``, decoded later by the task
    exactly as a file on disk is by ``cnnlab predict``: the bytes as sent, or a PNG of the image
    when it was scaled down."""
    if upload.resized:
        path = folder / "upload.png"
        with replacing(path) as f:
            to_pil(upload.image).save(f, format="PNG", compress_level=1)  # fast; lossless
        return path
    suffix = Path(upload.name).suffix.lower()
    if not re.fullmatch(r"\.[a-z0-9]{1,5}", suffix):
        suffix = ""
    path = folder / f"upload{suffix}"
    write_bytes(path, upload.data)
    return path


_PATH = re.compile(r"(?<![\w.])(?:[A-Za-z]:)?(?:[\\/][\w.@+~-]+){2,}[\\/]?")
_CONTROL = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|[\x00-\x1f\x7f-\x9f]")  # ANSI escapes, control characters


def scrub(message: str, replacements: dict[str, str] | None = None) -> str:
    """One line without file-system paths (known paths -> their public names, others -> <path>)
    and without terminal escape codes or control characters."""
    for path, public in sorted((replacements or {}).items(), key=lambda kv: -len(kv[0])):
        message = message.replace(path, public)
    line = message.splitlines()[0] if message else ""
    return _PATH.sub("<path>", _CONTROL.sub("", line))[:500]
