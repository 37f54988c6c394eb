"""``cnnlab explain``: what a model sees: feature maps, filters, a class activation map, the feature hierarchy."""
from __future__ import annotations

import argparse


def add(sub) -> argparse.ArgumentParser:
    ex = sub.add_parser("explain", help="feature maps, filters, Grad-CAM and the feature hierarchy of a model")
    ex.add_argument("checkpoint", nargs="?", help="a checkpoint (.pt); or use --model NAME --pretrained")
    ex.add_argument("image", nargs="?", metavar="IMAGE")
    ex.add_argument("--model", help="a registered model name (with --pretrained)")
    ex.add_argument("--pretrained", action="store_true")
    ex.add_argument("--method", default="gradcam", choices=["gradcam", "gradcam++", "saliency"])
    ex.add_argument("--layer", help="the layer for the class activation map (default: the last conv layer)")
    ex.add_argument("--class", dest="target_class", help="explain this class (default: the predicted one)")
    ex.add_argument("--hierarchy", metavar="DATA", help="a dataset whose patches most excite early/middle/late layers")
    ex.add_argument("--out", default="explain", help="folder for the figures")
    ex.add_argument("--device", default="auto")
    return ex


def run(a) -> int:
    from cnnlab import api

    if a.checkpoint and a.model:  # `explain --model NAME --pretrained IMG`: argparse took IMG as the checkpoint
        a.checkpoint, a.image = None, a.checkpoint
    r = api.explain(a.checkpoint, a.image, a.out, model=a.model, pretrained=a.pretrained, method=a.method,
                    layer=a.layer, target_class=a.target_class, hierarchy=a.hierarchy, device=a.device)
    print(f"{a.image}:")
    for t in r["prediction"]:
        print(f"  {t['class'][:28]:>28} {t['prob']:.3f}")
    c = r["cam"]
    print(f"{c['method']} for class {c['class']!r} (p={c['prob']:.3f}) at layer {c['layer']}")
    for path in r["files"].values():
        print(f"wrote {path}")
    return 0
