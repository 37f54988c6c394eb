"""images.py: every format and mode, EXIF rotation, 16-bit scaling, bad inputs, the Lincoln slide."""
import os
import signal
import struct
import zlib

import numpy as np
import pytest
import torch
from PIL import Image, PngImagePlugin

from cnnlab.errors import CnnlabError
from cnnlab.images import (DEFAULT_MAX_PIXELS, ImageError, format_pixels, peek_image,
                           pixel_matrix, read_image, resize, save_image, to_pil)

RNG = np.random.default_rng(0)
RGB = RNG.integers(0, 256, (12, 16, 3), dtype=np.uint8)  # (H, W, C)
GRAY = RNG.integers(0, 256, (12, 16), dtype=np.uint8)


def chw(a):
    return torch.from_numpy(a).permute(2, 0, 1) if a.ndim == 3 else torch.from_numpy(a)[None]


# ---------------------------------------------------------------------------------------------
# formats
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("ext,kw", [("png", {}), ("bmp", {}), ("tiff", {}),
                                    ("webp", {"lossless": True}), ("ppm", {})])
def test_lossless_formats_round_trip(tmp_path, ext, kw):
    path = tmp_path / f"x.{ext}"
    Image.fromarray(RGB).save(path, **kw)
    img = read_image(path)
    assert img.dtype == torch.uint8 and img.shape == (3, 12, 16)
    assert torch.equal(img, chw(RGB))


def test_jpeg_is_close(tmp_path):
    smooth = np.tile(np.linspace(0, 255, 16, dtype=np.uint8), (12, 1))
    Image.fromarray(np.stack([smooth] * 3, -1)).save(tmp_path / "x.jpg", quality=95)
    img = read_image(tmp_path / "x.jpg")
    assert img.shape == (3, 12, 16)
    assert (img.int() - torch.from_numpy(smooth).int()).abs().max() <= 8


def test_gif_first_frame(tmp_path):
    frames = [Image.new("L", (8, 6), v) for v in (10, 200)]
    frames[0].save(tmp_path / "a.gif", save_all=True, append_images=frames[1:])
    img = read_image(tmp_path / "a.gif", channels=1)
    assert img.shape == (1, 6, 8) and (img == 10).all()


def test_raw_bytes_with_name(tmp_path):
    Image.fromarray(GRAY).save(tmp_path / "g.png")
    img = read_image((tmp_path / "g.png").read_bytes(), name="upload.png")
    assert torch.equal(img, chw(GRAY))
    with pytest.raises(ImageError, match="upload.png"):
        read_image(b"hello, not an image", name="upload.png")


# ---------------------------------------------------------------------------------------------
# modes and channels
# ---------------------------------------------------------------------------------------------

def test_gray_natural_and_converted(tmp_path):
    Image.fromarray(GRAY).save(tmp_path / "g.png")
    assert read_image(tmp_path / "g.png").shape == (1, 12, 16)
    rgb = read_image(tmp_path / "g.png", channels=3)
    assert rgb.shape == (3, 12, 16) and torch.equal(rgb[0], rgb[2])
    assert read_image(tmp_path / "g.png", channels=4)[3].min() == 255


def test_rgb_to_luminance(tmp_path):
    Image.fromarray(RGB).save(tmp_path / "c.png")
    gray = read_image(tmp_path / "c.png", channels=1)
    expect = np.array(Image.fromarray(RGB).convert("L"))
    assert torch.equal(gray[0], torch.from_numpy(expect))


def test_rgba_kept_or_composited_on_white(tmp_path):
    a = np.zeros((4, 4, 4), np.uint8)
    a[..., 0] = 255          # red ...
    a[:2, :, 3] = 255        # ... opaque in the top half, fully transparent below
    Image.fromarray(a, "RGBA").save(tmp_path / "a.png")
    assert read_image(tmp_path / "a.png").shape == (4, 4, 4)
    rgb = read_image(tmp_path / "a.png", channels=3)
    assert rgb[:, 0, 0].tolist() == [255, 0, 0]
    assert rgb[:, 3, 0].tolist() == [255, 255, 255]  # white background


def test_la_mode(tmp_path):
    la = Image.merge("LA", [Image.new("L", (5, 3), 40), Image.new("L", (5, 3), 255)])
    la.save(tmp_path / "la.png")
    assert read_image(tmp_path / "la.png").shape == (4, 3, 5)
    assert (read_image(tmp_path / "la.png", channels=1) == 40).all()


def test_palette_with_transparency(tmp_path):
    p = Image.new("P", (4, 4), 0)
    p.putpalette([0, 0, 255] + [255, 0, 0] * 255)
    p.putpixel((0, 0), 1)
    p.save(tmp_path / "p.png", transparency=1)
    img = read_image(tmp_path / "p.png")
    assert img.shape == (4, 4, 4) and img[3, 0, 0] == 0 and img[3, 1, 1] == 255
    rgb = read_image(tmp_path / "p.png", channels=3)
    assert rgb[:, 0, 0].tolist() == [255, 255, 255] and rgb[:, 1, 1].tolist() == [0, 0, 255]


def test_palette_without_transparency_is_rgb(tmp_path):
    Image.fromarray(RGB).convert("P").save(tmp_path / "p.bmp")
    assert read_image(tmp_path / "p.bmp").shape == (3, 12, 16)


def test_cmyk(tmp_path):
    Image.new("CMYK", (6, 4), (0, 255, 255, 0)).save(tmp_path / "c.tiff")  # pure red
    img = read_image(tmp_path / "c.tiff")
    assert img.shape == (3, 4, 6) and img[:, 0, 0].tolist() == [255, 0, 0]


def test_bilevel(tmp_path):
    Image.fromarray(GRAY > 128).save(tmp_path / "b.png")
    img = read_image(tmp_path / "b.png")
    assert img.shape == (1, 12, 16) and set(img.unique().tolist()) <= {0, 255}


SIXTEEN = np.array([[0, 255, 256, 32768, 65535]], dtype=np.uint16)
SIXTEEN_8 = [0, 0, 1, 128, 255]  # >> 8


def test_16bit_png_scaled_by_type_range(tmp_path):
    Image.fromarray(SIXTEEN).save(tmp_path / "d.png")
    with Image.open(tmp_path / "d.png") as im:
        assert im.mode.startswith("I")
    assert read_image(tmp_path / "d.png")[0, 0].tolist() == SIXTEEN_8


def test_16bit_big_endian_tiff(tmp_path):
    im = Image.frombytes("I;16B", (5, 1), SIXTEEN.astype(">u2").tobytes())
    im.save(tmp_path / "d.tiff")
    assert read_image(tmp_path / "d.tiff")[0, 0].tolist() == SIXTEEN_8


def test_32bit_integer_mode(tmp_path):
    Image.fromarray(SIXTEEN.astype(np.int32)).save(tmp_path / "i.tiff")
    with Image.open(tmp_path / "i.tiff") as im:
        assert im.mode == "I"
    assert read_image(tmp_path / "i.tiff", channels=3)[:, 0].tolist() == [SIXTEEN_8] * 3


def test_exif_orientation_applied(tmp_path):
    a = np.zeros((20, 40, 3), np.uint8)
    a[:, :20] = 255  # left half white
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 CW to display"
    Image.fromarray(a).save(tmp_path / "r.jpg", exif=exif.tobytes(), quality=95)
    img = read_image(tmp_path / "r.jpg")
    assert img.shape == (3, 40, 20)  # portrait, as a viewer shows it
    assert img[:, :15].float().mean() > 200 and img[:, 25:].float().mean() < 50  # white on top


def test_peek_reads_the_header_only(tmp_path, monkeypatch):
    a = np.zeros((40, 20, 3), np.uint8)
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 CW to display"
    Image.fromarray(a).save(tmp_path / "r.png", exif=exif.tobytes())
    Image.fromarray(RGB).save(tmp_path / "plain.png")

    def no_decoding(self):
        raise AssertionError("peek_image decoded the pixels")

    monkeypatch.setattr(PngImagePlugin.PngImageFile, "load", no_decoding)
    assert peek_image(tmp_path / "r.png") == (3, 20, 40)  # as read_image turns it
    assert peek_image(tmp_path / "plain.png") == (3, 12, 16)


# ---------------------------------------------------------------------------------------------
# bad inputs: one clear ImageError naming the file
# ---------------------------------------------------------------------------------------------

def _truncated_png(path):
    Image.fromarray(RGB).save(path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def _truncated_jpg(path):
    Image.fromarray(np.kron(RGB, np.ones((8, 8, 1), np.uint8))).save(path, quality=90)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


@pytest.mark.parametrize("make,expect", [
    (lambda p: p.write_bytes(b""), "empty file"),
    (lambda p: p.write_text("this is text, not a jpeg\n"), "not an image"),
    (_truncated_png, "truncated"),
    (_truncated_jpg, "truncated"),
    (lambda p: p.write_bytes(RNG.integers(0, 256, 2000, dtype=np.uint8).tobytes()), "not an image"),
    (lambda p: None, "no such file"),
    (lambda p: p.mkdir(), "folder"),
    (lambda p: p.symlink_to(p.name), "symbolic link"),  # a link to itself: a loop
    (lambda p: os.mkfifo(p), "not a regular file"),
])
def test_bad_files(tmp_path, make, expect):
    path = tmp_path / "bad_photo.jpg"
    make(path)
    signal.alarm(10)  # a FIFO opened for reading would block until a writer comes
    try:
        for read in (read_image,) if expect == "truncated" else (read_image, peek_image):  # header only
            with pytest.raises(ImageError, match=expect) as e:
                read(path)
            assert "bad_photo.jpg" in str(e.value) and "\n" not in str(e.value)
            assert isinstance(e.value, CnnlabError)
    finally:
        signal.alarm(0)


def test_unreadable_file(tmp_path, monkeypatch):
    Image.fromarray(RGB).save(tmp_path / "secret.png")
    real_open = os.open

    def denied(path, *args, **kwargs):  # as chmod 000 is for anyone but root (tests may run as root)
        if os.fspath(path).endswith("secret.png"):
            raise PermissionError(13, "Permission denied", os.fspath(path))
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr(os, "open", denied)
    for read in (read_image, peek_image):
        with pytest.raises(ImageError, match="secret.png: permission denied"):
            read(tmp_path / "secret.png")


@pytest.mark.parametrize("content", [b"not an image", None])
def test_hostile_file_name_is_printed_safely(tmp_path, content):
    raw = b"\xff\x1b[31mred\x1b[0m\x07\n.png"  # not UTF-8, ANSI colour, bell, newline
    path = os.fsencode(tmp_path) + b"/" + raw
    with open(path, "wb") as f:
        f.write(content or b"")
    for read in (read_image, peek_image):
        with pytest.raises(ImageError) as e:
            read(os.fsdecode(path))
        message = str(e.value)
        message.encode("utf-8")  # printable on any UTF-8 terminal: no UnicodeEncodeError
        assert "\\xffred" in message and not any(ord(c) < 32 for c in message)


def _png_header_only(w, h):
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 0, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(b"\0" * 16)) + chunk(b"IEND", b""))


def test_pixel_limit_checked_before_decoding(tmp_path):
    Image.fromarray(RGB).save(tmp_path / "x.png")
    with pytest.raises(ImageError, match=r"16x12 = 192 pixels.*limit of 100.*max_pixels=192"):
        read_image(tmp_path / "x.png", max_pixels=100)
    assert read_image(tmp_path / "x.png", max_pixels=192).shape == (3, 12, 16)


@pytest.mark.parametrize("w,h", [(12_000, 8_000), (20_000, 20_000), (100_000, 100_000)])  # ours; Pillow's
def test_decompression_bomb_header(tmp_path, w, h):
    before = Image.MAX_IMAGE_PIXELS
    (tmp_path / "bomb.png").write_bytes(_png_header_only(w, h))  # 100 bytes claiming >90 MP
    with pytest.raises(ImageError, match="bomb.png.*(limit|too large)"):
        read_image(tmp_path / "bomb.png")
    assert w * h > DEFAULT_MAX_PIXELS and Image.MAX_IMAGE_PIXELS == before
    assert not __import__("PIL.ImageFile").ImageFile.LOAD_TRUNCATED_IMAGES


# ---------------------------------------------------------------------------------------------
# converting, writing, and the image as a matrix of numbers
# ---------------------------------------------------------------------------------------------

def test_resize_save_to_pil(tmp_path):
    img = chw(RGB)
    small = resize(img, (6, 8))
    assert small.dtype == torch.uint8 and small.shape == (3, 6, 8)
    assert resize(img, (12, 16)) is img
    path = save_image(img, tmp_path / "sub" / "out.png")
    assert torch.equal(read_image(path), img)
    assert to_pil(chw(GRAY)).mode == "L" and to_pil(torch.zeros(4, 2, 2, dtype=torch.uint8)).mode == "RGBA"


def test_pixel_matrix_and_format():
    a = np.arange(0, 250, 10, dtype=np.uint8).reshape(5, 5)
    img = chw(a)
    m = pixel_matrix(img, crop=(1, 2, 3, 2))  # x, y, w, h
    assert m.dtype == np.uint8 and m.tolist() == [[110, 120, 130], [160, 170, 180]]
    assert format_pixels(np.array([[0, 7, 255], [10, 100, 9]], np.uint8)) == "  0   7 255\n 10 100   9"
    assert pixel_matrix(img, size=10).shape == (10, 10)
    assert pixel_matrix(chw(RGB), size=8).shape == (6, 8)  # longer side 8; colour -> gray


def test_pixel_matrix_from_file_and_bad_crop(tmp_path):
    Image.fromarray(GRAY).save(tmp_path / "lincoln.png")
    assert np.array_equal(pixel_matrix(tmp_path / "lincoln.png"), GRAY)
    with pytest.raises(ImageError, match=r"lincoln.png.*crop \(x=10, y=0, w=10, h=4\).*16x12"):
        pixel_matrix(tmp_path / "lincoln.png", crop=(10, 0, 10, 4))


def test_signed_maps_get_a_diverging_colour_map_centred_on_zero():
    from cnnlab.figures import map_style

    edges = np.array([[-3.0, 0.0, 1.0], [2.0, -1.0, 0.5]])
    style = map_style(edges, "gray", clip=0)
    assert style == {"cmap": "RdBu_r", "vmin": -3.0, "vmax": 3.0}
    relu = np.array([[0.0, 1.0], [4.0, 2.0]])
    assert map_style(relu, "viridis", clip=0) == {"cmap": "viridis", "vmin": 0.0, "vmax": 4.0}
    assert map_style(np.zeros((2, 2)), "gray", clip=0)["cmap"] == "gray"
