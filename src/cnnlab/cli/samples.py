"""``cnnlab samples``: write the sample images the README's commands use."""
from __future__ import annotations

import argparse

from cnnlab.errors import CnnlabError


def add(sub) -> argparse.ArgumentParser:
    sm = sub.add_parser("samples", help="write the sample images the README's commands use (a digit, "
                        "shapes scenes, a road scene, the cat, the espresso)")
    sm.add_argument("names", nargs="*", metavar="FILE", help="only these samples (default: all)")
    sm.add_argument("--out", default=".", metavar="DIR", help="the folder to write them to (default: here)")
    return sm


def run(a) -> int:
    from cnnlab.data.builtin.samples import write_samples

    r = write_samples(a.out, a.names, log=print)
    if not r["written"]:
        raise CnnlabError("no sample could be written here")
    return 0
