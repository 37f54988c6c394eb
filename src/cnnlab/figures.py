"""Writing figures: one checked path for every image file cnnlab draws.

A figure is rendered in memory, then written through ``cnnlab.files`` (a temporary file renamed
over the name): a full disk or an unwritable path is an error (matplotlib's own ``savefig(path)``
reported success on /dev/full), and a link planted at the name is replaced, not written through.
"""
from __future__ import annotations

import io
from pathlib import Path

from cnnlab.errors import CnnlabError
from cnnlab.files import write_bytes

FIGURE_FORMATS = ("png", "jpg", "jpeg", "pdf", "svg")


def figure_path(path: str | Path) -> Path:
    """``path`` as a figure file: a known suffix, and no file where its folder should be."""
    path = Path(path)
    suffix = path.suffix.lower().lstrip(".")
    if suffix not in FIGURE_FORMATS:
        raise CnnlabError(f"{path}: figures are written as {', '.join('.' + f for f in FIGURE_FORMATS)}; "
                          f"got {'.' + suffix if suffix else 'no suffix'}")
    if path.is_dir():
        raise CnnlabError(f"{path}: a folder; expected a figure file name such as {path / 'figure.png'}")
    for parent in path.parents:
        if parent.exists() and not parent.is_dir():
            raise CnnlabError(f"{path}: {parent} is a file, not a folder")
    return path


def save_figure(fig, path: str | Path, **savefig_options) -> Path:
    """Render matplotlib ``fig``, write it to ``path`` (its suffix picks the format), close it.
    The figure's folder is created when its parent exists (``files.make_folder``)."""
    import matplotlib.pyplot as plt

    path = figure_path(path)
    buffer = io.BytesIO()
    try:
        fig.savefig(buffer, format=path.suffix.lower().lstrip(".").replace("jpg", "jpeg"), **savefig_options)
    finally:
        plt.close(fig)
    return write_bytes(path, buffer.getvalue())


def map_style(values, sequential: str = "gray", clip: float = 1.0) -> dict:
    """``imshow`` colours for a map: a diverging map centred on 0 ("RdBu_r": negative blue, positive
    red) when it has both signs, else ``sequential``. Limits at the ``clip``-th and 100-``clip``-th
    percentiles, so a few extremes do not wash out the rest (``clip=0``: the full range)."""
    import numpy as np

    values = np.asarray(values, dtype=np.float64)
    low, high = np.percentile(values, [clip, 100 - clip]) if clip else (values.min(), values.max())
    if values.min() < 0 < values.max():
        m = max(abs(low), abs(high)) or 1.0
        return {"cmap": "RdBu_r", "vmin": -m, "vmax": m}
    return {"cmap": sequential, "vmin": low, "vmax": high}
