"""``cnnlab detect-faces``: the faces experiment's CNN slid over an image pyramid, then non-maximum suppression."""
from __future__ import annotations

import argparse

from cnnlab.cli.common import json_text
from cnnlab.errors import CnnlabError


def add(sub) -> argparse.ArgumentParser:
    df = sub.add_parser("detect-faces", help="find faces in a photo: the faces experiment's CNN slid over "
                        "an image pyramid, then non-maximum suppression")
    df.add_argument("image")
    df.add_argument("--checkpoint", help="a face / non-face model (default: the one `cnnlab experiment faces` "
                    "wrote to runs/experiments/faces/runs/detector/last.pt)")
    df.add_argument("--threshold", type=float, default=0.9, help="lowest face probability kept (default 0.9)")
    df.add_argument("--scales", metavar="S,S,...", help="pyramid shrink factors; a face of 25/S px fills a "
                    "window (default: faces from a tenth of the shorter side to all of it)")
    df.add_argument("--min-face", type=int, help="smallest face side in pixels for the default pyramid")
    df.add_argument("--max-face", type=int, help="largest face side in pixels for the default pyramid")
    df.add_argument("--stride", type=int, default=2, help="window step in pyramid pixels (default 2)")
    df.add_argument("--out", help="write a figure of the detections and the face-score heat map here")
    df.add_argument("--json", action="store_true", help="print the boxes and scores as JSON")
    return df


def run(a) -> int:
    from cnnlab import api

    try:
        scales = [float(v) for v in a.scales.split(",")] if a.scales else None
    except ValueError:
        raise CnnlabError(f"--scales {a.scales!r}: expected shrink factors such as 0.25,0.2,0.16") from None
    r = api.detect_faces(a.image, a.checkpoint, threshold=a.threshold, scales=scales, stride=a.stride,
                         min_face=a.min_face, max_face=a.max_face, out=a.out)
    if a.json:
        print(json_text(r))
        return 0
    print(f"{a.image}: {len(r['faces'])} faces ({r['windows']:,} windows over {len(r['scales'])} scales)")
    for f in r["faces"]:
        x1, y1, x2, y2 = f["box"]
        print(f"  score {f['score']:.3f}  box x {x1:.0f}..{x2:.0f}, y {y1:.0f}..{y2:.0f}")
    if r.get("figure"):
        print(f"figure: {r['figure']}")
    return 0
