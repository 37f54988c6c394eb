"""The real-photo recipes run end to end on a few of their own photos: BCCD blood cells (VOC).

The bars themselves (30-minute trainings) are measured by benchmarks/bccd.py; here the recipe
as shipped trains, selects, evaluates (``map50``/``map`` in eval's JSON) and predicts on real photos.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

import cnnlab
from cnnlab import cli

ROOT = Path(__file__).resolve().parents[1]
BCCD = Path(os.environ.get("CNNLAB_BCCD", ROOT.parent / "shared" / "data" / "bccd"))
needs_bccd = pytest.mark.skipif(not (BCCD / "Annotations").is_dir(),
                                reason=f"BCCD not found at {BCCD} (set CNNLAB_BCCD)")


def small_voc(root: Path, n_train: int = 4, n_test: int = 2) -> Path:
    """A VOC folder of BCCD's first photos, linked, with train/val/test lists."""
    ids = sorted((BCCD / "ImageSets" / "Main" / "train.txt").read_text().split())[: n_train + 2 * n_test]
    for sub in ("Annotations", "JPEGImages", "ImageSets/Main"):
        (root / sub).mkdir(parents=True)
    for i in ids:
        (root / "Annotations" / f"{i}.xml").symlink_to(BCCD / "Annotations" / f"{i}.xml")
        (root / "JPEGImages" / f"{i}.jpg").symlink_to(BCCD / "JPEGImages" / f"{i}.jpg")
    parts = {"train": ids[:n_train], "val": ids[n_train:n_train + n_test], "test": ids[n_train + n_test:]}
    for split, names in parts.items():
        (root / "ImageSets" / "Main" / f"{split}.txt").write_text("\n".join(names) + "\n")
    return root


@needs_bccd
@pytest.mark.slow
def test_bccd_recipe_trains_evaluates_and_predicts_on_real_photos(tmp_path, capsys):
    data = small_voc(tmp_path / "bccd")
    out = tmp_path / "run"
    run = cnnlab.train(config=ROOT / "recipes" / "bccd.yaml", log=None,
                       overrides=[f"data={data}", f"out={out}", "epochs=1", "batch_size=2", "plots=false",
                                  "workers=0"])
    assert run.task.name == "detect" and (out / "best.pt").is_file()
    assert cli.main(["eval", str(out / "best.pt"), "--split", "test", "--json", "--full", "--no-plots"]) == 0
    metrics = json.loads(capsys.readouterr().out)
    assert {"map", "map50", "per_class_ap"} <= set(metrics)
    assert 0.0 <= metrics["map"] <= metrics["map50"] <= 1.0
    # the checkpoint rebuilds the model that was trained: its pretrained backbone's input scale too
    loaded = cnnlab.load(out / "best.pt", device="cpu")
    assert loaded.model.transform.image_mean == pytest.approx([127 / 255] * 3)  # EfficientNet-Lite0's
    assert loaded.model.transform.image_std == pytest.approx([128 / 255] * 3)
    assert metrics["map"] == pytest.approx(run.test["map"], abs=1e-6)
    assert metrics["map50"] == pytest.approx(run.test["map50"], abs=1e-6)
    assert set(metrics["per_class_ap"]) == {"Platelets", "RBC", "WBC"}
    [result] = cnnlab.predict(out / "best.pt", [BCCD / "JPEGImages" / "BloodImage_00000.jpg"], score_threshold=0.0)
    assert result["detections"] and {d["class"] for d in result["detections"]} <= {"Platelets", "RBC", "WBC"}
