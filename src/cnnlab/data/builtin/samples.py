"""The sample images the README's commands use (``cnnlab samples``), written from data at hand.

    write_samples("samples/")   # -> {"written": [...], "skipped": [(file, why)]}

digits and the shapes scenes come from cnnlab's own built-in sets (the same images every time);
chelsea, coffee, astronaut and the cameraman from scikit-image's bundled photos (``pip install cnnlab[images]``);
the road scene from CamVid's val split when a copy is at hand. Nothing is downloaded.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Callable

import numpy as np

CAMVID = "../shared/data/camvid"  # where the README keeps CamVid (from the project root); CNNLAB_CAMVID overrides
ROAD = "0016E5_07959.png"  # the CamVid val scene the README's segmentation example shows


# ---------------------------------------------------------------------- the samples
def _digit(label: int) -> Callable[[], np.ndarray]:
    def make() -> np.ndarray:  # (8, 8) uint8: the first test image of that digit
        from cnnlab.data import load_dataset

        d = load_dataset("digits", "test")
        i = int((d.labels == label).nonzero()[0, 0])
        return d.images[i, 0].numpy()
    return make


def _scene(task: str, pick: Callable[[object], int]) -> Callable[[], np.ndarray]:
    def make() -> np.ndarray:  # (64, 64, 3) uint8
        from cnnlab.data import load_dataset

        d = load_dataset("shapes", "test", task=task)
        return d.images[pick(d)].permute(1, 2, 0).numpy()
    return make


def _caption_scene(index: int) -> Callable[[], np.ndarray]:
    def make() -> np.ndarray:  # only the first scenes of the test split are drawn
        from cnnlab.data.builtin.caption_shapes import split_scenes

        return split_scenes("test", n=index + 1)[index].image.permute(1, 2, 0).numpy()
    return make


def _four_objects(d) -> int:
    return next((i for i, t in enumerate(d.targets) if len(t["boxes"]) == 4), 0)


def _photo(name: str) -> Callable[[], np.ndarray]:
    def make() -> np.ndarray:
        try:
            from skimage import data
        except ImportError:
            raise _Skip("needs scikit-image (pip install 'cnnlab[images]')") from None
        return getattr(data, name)()
    return make


def _road() -> np.ndarray:
    folder = Path(os.environ.get("CNNLAB_CAMVID") or CAMVID)
    path = folder / "val" / ROAD
    if not path.is_file():
        raise _Skip(f"no CamVid at {folder} (set CNNLAB_CAMVID to its folder)")
    from cnnlab.images import read_array

    return read_array(path)


# file -> (what it is, how to make it); None: an empty file (the README's error example)
SAMPLES: dict[str, tuple[str, Callable[[], np.ndarray] | None]] = {
    "digit.png": ("a handwritten 9 (digits test set)", _digit(9)),
    "seven.png": ("a handwritten 7 (digits test set)", _digit(7)),
    "scene1.png": ("a shapes scene for segmentation (test scene 0)", _scene("segment", lambda d: 0)),
    "scene.png": ("a shapes scene with 4 objects for detection (test)", _scene("detect", _four_objects)),
    "scene3.png": ("a shapes scene for captioning (test scene 3)", _caption_scene(3)),
    "chelsea.png": ("the cat (scikit-image)", _photo("chelsea")),
    "coffee.png": ("the espresso (scikit-image)", _photo("coffee")),
    "astronaut.png": ("a portrait for detect-faces (scikit-image)", _photo("astronaut")),
    "photo.png": ("a photo for detect-faces: the cameraman (scikit-image)", _photo("camera")),
    "road.png": (f"a CamVid road scene (val {ROAD})", _road),
    "empty.jpg": ("an empty file (the one-line error example)", None),
}


class _Skip(Exception):
    """This sample cannot be made here; the message says why."""


def write_samples(out: str | Path = ".", names: list[str] | None = None, log=None) -> dict:
    """Write the README's sample images into ``out``; returns ``{"written": [{"file", "about",
    "size"}], "skipped": [{"file", "why"}]}``. ``log``: called with one line per file."""
    from PIL import Image

    from cnnlab.errors import unknown_name
    from cnnlab.files import make_folder, write_bytes
    from cnnlab.images import save_pil

    for name in names or []:
        if name not in SAMPLES:
            raise unknown_name("sample", name, SAMPLES)
    out = make_folder(out, f"--out {out}")
    result = {"written": [], "skipped": []}
    for name, (about, make) in SAMPLES.items():
        if names and name not in names:
            continue
        path = out / name
        try:
            pixels = make() if make else None
        except _Skip as e:
            result["skipped"].append({"file": str(path), "why": str(e)})
            if log:
                log(f"skipped {path}: {e}")
            continue
        if pixels is None:
            write_bytes(path, b"")
            size = "0 bytes"
        else:
            save_pil(Image.fromarray(np.ascontiguousarray(pixels)), path)
            size = f"{pixels.shape[1]}x{pixels.shape[0]}"
        result["written"].append({"file": str(path), "about": about, "size": size})
        if log:
            log(f"wrote {str(path):<24} {size:>9}  {about}")
    return result
