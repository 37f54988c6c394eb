"""``cnnlab xo``: the lecture's "X or X?" case study, then a CNN trained on X versus O."""
from __future__ import annotations

import argparse


def add(sub) -> argparse.ArgumentParser:
    o = sub.add_parser("xo", help='the lecture\'s "X or X?" case study, then a CNN trained on X versus O')
    o.add_argument("--out", help="the folder for its figures and run (default runs/xo)")
    o.add_argument("--epochs", type=int, default=2)
    o.add_argument("--seed", type=int, default=0)
    o.add_argument("--no-train", action="store_true", help="only the hand-made filters, no training")
    return o


def run(a) -> int:
    from cnnlab import api

    r = api.xo(a.out, epochs=a.epochs, seed=a.seed, train=not a.no_train)
    print(r["case_study"]["report"])
    print(f"figure: {r['case_study']['figure']}")
    if "cnn" in r:
        print()
        print(r["cnn"]["report"])
        print(f"figure: {r['cnn']['figure']}")
    return 0
