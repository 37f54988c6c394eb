"""The one image reader: any image file or upload -> a uint8 (C, H, W) tensor, with safe limits.

    img = read_image("cat.jpg")                 # (3, H, W), EXIF rotation applied
    gray = read_image(data, channels=1, name="upload.png")   # raw bytes from an HTTP upload
    print(format_pixels(pixel_matrix(gray, crop=(40, 30, 12, 12))))  # the "image is a matrix" slide

Formats: PNG, JPEG (camera MPO files too), BMP, GIF (first frame), WebP, TIFF, PPM/PGM.
Modes: 1, L, P (with transparency), RGB, RGBA, LA, PA, CMYK, YCbCr, 16-bit (I;16, I;16B, I)
and float (F). Pillow's ``LOAD_TRUNCATED_IMAGES`` is never turned on: a truncated file is an error.
"""
from __future__ import annotations

import contextlib
import io
import os
import stat
import warnings
from pathlib import Path

from typing import TYPE_CHECKING

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from cnnlab.errors import CnnlabError, clean
from cnnlab.files import replacing

if TYPE_CHECKING:  # torch loads only where a tensor is made: `cnnlab pixels` never needs it
    from torch import Tensor

DEFAULT_MAX_PIXELS = 89_478_485
"""Largest width*height decoded (Pillow's own default, about 89 megapixels, ~256 MiB as RGB).

Pass ``max_pixels=`` to raise it. Pillow separately refuses images over twice its
``PIL.Image.MAX_IMAGE_PIXELS``; beyond about 179 megapixels raise that too."""

FORMATS = ("PNG", "JPEG", "BMP", "GIF", "WEBP", "TIFF", "PPM")
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff", ".ppm", ".pgm")  # files of FORMATS
_GRAY_MODES = {"1", "L", "I;16", "I;16L", "I;16B", "I;16N", "I", "F"}
_ALPHA_MODES = {"RGBA", "LA", "PA", "RGBa", "La"}
_OPEN_FLAGS = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0)


class ImageError(CnnlabError):
    """An image that cannot be read: missing, empty, not an image, truncated, or too large."""


# ---------------------------------------------------------------------------------------------
# reading
# ---------------------------------------------------------------------------------------------

def read_image(source: str | Path | bytes, channels: int | None = None,
               max_pixels: int = DEFAULT_MAX_PIXELS, name: str | None = None) -> Tensor:
    """Decode an image file (or its raw bytes) into a uint8 (C, H, W) tensor.

    channels: 1 (luminance, ITU-R 601), 3 (RGB), 4 (RGBA), or None to keep the natural
    count (1 for gray, 3 for colour, 4 when the image has alpha or a transparent palette).
    Alpha is composited on WHITE when it must go (channels 1 or 3), so transparent
    logos and icons look as they do in a browser.
    name: what error messages call the image (default: the path, or "<bytes>").
    """
    import torch

    return torch.from_numpy(read_array(source, channels, max_pixels, name)).permute(2, 0, 1).contiguous()


def read_array(source: str | Path | bytes, channels: int | None = None,
               max_pixels: int = DEFAULT_MAX_PIXELS, name: str | None = None) -> np.ndarray:
    """``read_image`` as a NumPy uint8 (H, W, C) array, without torch."""
    if channels not in (None, 1, 3, 4):
        raise ValueError(f"channels must be 1, 3, 4 or None, got {channels!r}")
    name = clean(name or (str(source) if not isinstance(source, (bytes, bytearray)) else "<bytes>"))
    img = _open_checked(source, name, max_pixels)
    try:
        img = _convert(_to_8bit(img), channels)
    except ValueError as e:  # a mode Pillow cannot convert, e.g. LAB
        raise ImageError(f"{name}: unsupported image mode {img.mode} ({e})") from None
    return _to_array(img)


def peek_image(path: str | Path) -> tuple[int, int, int]:
    """(C, H, W) that ``read_image(path)`` would return, from the header alone (no decode).

    Raises ImageError for a file Pillow cannot identify."""
    name = clean(path)
    fp = _open_file(Path(path), name)
    try:
        with _decoding(name):
            img = Image.open(fp, formats=FORMATS)
            width, height = img.size
            if _header_orientation(img) in (5, 6, 7, 8):  # EXIF orientations that swap the axes
                width, height = height, width
            has_alpha = img.mode in _ALPHA_MODES or (img.mode == "P" and "transparency" in img.info)
    finally:
        fp.close()
    return (4 if has_alpha else 1 if img.mode in _GRAY_MODES else 3), height, width


def _header_orientation(img: Image.Image) -> int | None:
    """The EXIF orientation, if the header has it: for a PNG whose eXIf chunk is not before the
    pixels, Pillow's ``getexif`` would decode the whole image to look for one."""
    if img.format == "PNG" and "exif" not in img.info:
        return None
    return img.getexif().get(0x0112)


def _open_checked(source, name: str, max_pixels: int) -> Image.Image:
    """Open, check the header size against ``max_pixels``, then force a full decode."""
    if isinstance(source, (bytes, bytearray)):
        if len(source) == 0:
            raise ImageError(f"{name}: empty file (0 bytes)")
        fp = io.BytesIO(source)
    else:
        fp = _open_file(Path(source), name)
    try:
        with _decoding(name):
            img = Image.open(fp, formats=FORMATS)  # reads the header only
            width, height = img.size
            if width * height > max_pixels:
                raise ImageError(
                    f"{name}: image is {width}x{height} = {width * height:,} pixels, over the limit "
                    f"of {max_pixels:,} (a guard against decompression bombs); pass "
                    f"max_pixels={width * height} to read it")
            img.load()  # full decode now, so a truncated file fails here and not later
            return ImageOps.exif_transpose(img)
    finally:
        fp.close()


@contextlib.contextmanager
def _decoding(name: str):
    """Pillow's errors while opening or decoding ``name`` as one ImageError each."""
    try:
        with warnings.catch_warnings():  # we apply our own limit; silence Pillow's warning
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            yield
    except Image.DecompressionBombError as e:
        raise ImageError(f"{name}: too large to decode safely ({clean(e)}); raise "
                         f"PIL.Image.MAX_IMAGE_PIXELS and max_pixels to read it") from None
    except UnidentifiedImageError:
        raise ImageError(f"{name}: not an image: cannot identify image format "
                         f"(supported: {', '.join(FORMATS)})") from None
    except (OSError, SyntaxError, ValueError, EOFError) as e:
        raise ImageError(f"{name}: cannot decode: truncated or corrupt image ({clean(e)})") from None


def _open_file(path: Path, name: str):
    """Open a non-empty regular file for reading; anything else is an ImageError saying why.

    The file type is checked before opening, so a FIFO or device is never opened; and the
    open does not block (O_NONBLOCK) should a FIFO be swapped in between the two."""
    try:
        info = path.stat()
        if stat.S_ISDIR(info.st_mode):
            raise ImageError(f"{name}: is a folder, not an image file")
        if not stat.S_ISREG(info.st_mode):
            raise ImageError(f"{name}: not a regular file (a FIFO, socket or device)")
        if info.st_size == 0:
            raise ImageError(f"{name}: empty file (0 bytes)")
        return os.fdopen(os.open(path, _OPEN_FLAGS), "rb")
    except FileNotFoundError:
        raise ImageError(f"{name}: no such file") from None
    except PermissionError:
        raise ImageError(f"{name}: permission denied") from None
    except OSError as e:  # a symbolic-link loop, a name too long, an I/O error...
        raise ImageError(f"{name}: cannot open ({clean(e.strerror or e)})") from None


def _to_8bit(img: Image.Image) -> Image.Image:
    """16-bit images -> L by the 16-bit range (>> 8); F (float) -> clipped to 0..255.

    Mode I (32-bit) is how Pillow holds 16-bit PNG/PGM/TIFF data, so it is clipped to
    0..65535 and scaled the same way."""
    if img.mode.startswith("I;16") or img.mode == "I":
        a = np.asarray(img).astype(np.int64)  # I;16B arrives as big-endian uint16: astype fixes it
        return Image.fromarray((np.clip(a, 0, 65535) >> 8).astype(np.uint8), "L")
    if img.mode == "F":
        return Image.fromarray(np.clip(np.asarray(img), 0, 255).round().astype(np.uint8), "L")
    return img


def _convert(img: Image.Image, channels: int | None) -> Image.Image:
    has_alpha = img.mode in _ALPHA_MODES or (img.mode == "P" and "transparency" in img.info)
    if channels is None:
        channels = 4 if has_alpha else 1 if img.mode in _GRAY_MODES else 3
    if channels == 4:
        return img.convert("RGBA")
    if has_alpha:
        white = Image.new("RGBA", img.size, (255, 255, 255, 255))
        img = Image.alpha_composite(white, img.convert("RGBA"))
    return img.convert("L" if channels == 1 else "RGB")


def _to_array(img: Image.Image) -> np.ndarray:
    a = np.array(img, dtype=np.uint8)  # (H, W) or (H, W, C)
    return a[:, :, None] if a.ndim == 2 else a  # (H, W, C)


# ---------------------------------------------------------------------------------------------
# converting and writing
# ---------------------------------------------------------------------------------------------

def resize(img: Tensor, size: tuple[int, int]) -> Tensor:
    """Antialiased resize of a uint8 (C, H, W) or (N, C, H, W) tensor to ``size = (h, w)``."""
    if tuple(img.shape[-2:]) == tuple(size):
        return img
    from torchvision.transforms.v2 import functional as F  # importing torchvision takes ~2 s

    return F.resize(img, list(size), antialias=True)


def to_pil(img: Tensor) -> Image.Image:
    """uint8 (1|3|4, H, W) or (H, W) tensor -> PIL image (L, RGB or RGBA)."""
    import torch

    if img.dtype != torch.uint8:
        raise ValueError(f"to_pil expects a uint8 tensor, got {img.dtype}")
    if img.ndim == 2:
        img = img[None]
    modes = {1: "L", 3: "RGB", 4: "RGBA"}
    if img.ndim != 3 or img.shape[0] not in modes:
        raise ValueError(f"to_pil expects (1|3|4, H, W), got {tuple(img.shape)}")
    a = img.permute(1, 2, 0).cpu().numpy()  # (H, W, C)
    return Image.fromarray(a[:, :, 0] if img.shape[0] == 1 else a, modes[img.shape[0]])


def save_image(img: Tensor, path: str | Path) -> Path:
    """Write a uint8 (C, H, W) tensor; the format follows the file extension."""
    return save_pil(to_pil(img), path)


def save_pil(image: Image.Image, path: str | Path) -> Path:
    """Write a PIL image through ``cnnlab.files`` (a temporary file renamed over the name: never
    through a link planted there); the format follows the file extension."""
    path = Path(path)
    fmt = Image.registered_extensions().get(path.suffix.lower())
    if fmt is None:
        raise CnnlabError(f"{path}: images are written as .png, .jpg, ...; got "
                          f"{path.suffix or 'no suffix'}")
    with replacing(path) as f:
        image.save(f, format=fmt)
    return path


# ---------------------------------------------------------------------------------------------
# an image is a matrix of numbers (the Lincoln slide)
# ---------------------------------------------------------------------------------------------

def pixel_matrix(img, crop: tuple[int, int, int, int] | None = None,
                 size: int | None = None, name: str | None = None) -> np.ndarray:
    """A grayscale uint8 (H, W) matrix of an image (a file, its bytes, a (H, W, C) array or a
    (C, H, W) tensor), optionally cropped to ``(x, y, w, h)`` and then resized (antialiased) so
    that its longer side is ``size`` pixels.

        >>> pixel_matrix("lincoln.png", crop=(100, 80, 12, 16))
    """
    if isinstance(img, (str, Path, bytes, bytearray)):
        name = clean(name or (str(img) if not isinstance(img, (bytes, bytearray)) else "<bytes>"))
        gray = read_array(img, channels=1, name=name)[:, :, 0]
    elif isinstance(img, np.ndarray):  # (H, W, C)
        gray = img[:, :, 0] if img.shape[2] == 1 else np.array(Image.fromarray(img[:, :, :3]).convert("L"))
    else:  # a uint8 (C, H, W) tensor
        gray = np.array(to_pil(img[:1] if img.shape[0] == 1 else img[:3]).convert("L"))
    height, width = gray.shape
    if crop is not None:
        x, y, w, h = crop
        if w <= 0 or h <= 0 or x < 0 or y < 0 or x + w > width or y + h > height:
            raise ImageError(f"{name or 'image'}: crop (x={x}, y={y}, w={w}, h={h}) lies outside the "
                             f"{width}x{height} image")
        gray = gray[y:y + h, x:x + w]
    if size is not None:
        h, w = gray.shape
        scale = size / max(h, w)
        target = (max(1, round(w * scale)), max(1, round(h * scale)))  # PIL: (width, height)
        gray = np.array(Image.fromarray(gray).resize(target, Image.Resampling.BILINEAR))
    return gray.copy()


def format_pixels(matrix: np.ndarray) -> str:
    """The matrix as rows of right-aligned 0-255 values, one text line per pixel row."""
    return "\n".join(" ".join(f"{int(v):3d}" for v in row) for row in np.asarray(matrix))


def as_image(image, channels: int | None = None, name: str = "image") -> Tensor:
    """A PIL image, a NumPy array (H, W) or (H, W, C) of uint8, or a uint8 (C, H, W) tensor, as
    the uint8 (C, H, W) tensor ``read_image`` would give for the same picture saved as a PNG."""
    import torch

    if isinstance(image, torch.Tensor):
        if image.dtype != torch.uint8 or image.ndim != 3 or image.shape[0] not in (1, 3, 4):
            raise ImageError(f"{name}: expected a uint8 (C, H, W) tensor with C 1, 3 or 4, "
                             f"got {image.dtype} {tuple(image.shape)}")
        if channels in (None, image.shape[0]):
            return image
        image = image.permute(1, 2, 0).cpu().numpy()
    if isinstance(image, np.ndarray):
        if image.dtype != np.uint8 or image.ndim not in (2, 3) or (image.ndim == 3 and image.shape[2] not in (1, 3, 4)):
            raise ImageError(f"{name}: expected a uint8 array (H, W) or (H, W, C) with C 1, 3 or 4, "
                             f"got {image.dtype} {image.shape}")
        image = Image.fromarray(image[..., 0] if image.ndim == 3 and image.shape[2] == 1 else image)
    if not isinstance(image, Image.Image):
        raise ImageError(f"{name}: expected a file path, PIL image, NumPy array or tensor, got {type(image).__name__}")
    if image.width * image.height == 0:
        raise ImageError(f"{name}: empty image ({image.width}x{image.height} pixels)")
    try:  # any mode: 16-bit and float to 8 bits, CMYK/YCbCr/LAB to RGB, alpha on white, as read_image
        converted = _convert(_to_8bit(image), channels)
    except (ValueError, OSError) as e:
        raise ImageError(f"{name}: unsupported image mode {image.mode} ({clean(e)})") from None
    return torch.from_numpy(_to_array(converted)).permute(2, 0, 1).contiguous()
