"""The lecture's arguments as experiments: fc-vs-cnn, pooling, faces (tiny budgets)."""
from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

import cnnlab
from cnnlab.cli import main
from cnnlab.errors import CnnlabError
from cnnlab.experiments.face_detector import iou, pyramid_scales, windows_at
from cnnlab.experiments.fc_vs_cnn import first_layer_parameters
from cnnlab.experiments.pooling import forward_flops
from cnnlab.experiments.runs import permute_pixels, pixel_permutation, shift

HAS_SKIMAGE = importlib.util.find_spec("skimage") is not None
NEEDS_SKIMAGE = pytest.mark.skipif(not HAS_SKIMAGE, reason="scikit-image not installed (pip install scikit-image)")


# ----------------------------------------------------------------------------- building blocks


def test_first_layer_parameters_follow_the_formula():
    counts = first_layer_parameters((3, 1080, 1080))
    assert counts["MLP"] == 1080 * 1080 * 3 * 256 + 256  # one weight per pixel per unit, plus biases
    assert counts["CNN"] == 3 * 3 * 3 * 32  # 32 filters of 3x3x3 (no bias: BatchNorm follows)
    assert first_layer_parameters((1, 28, 28))["MLP"] == 28 * 28 * 256 + 256


def test_shift_moves_content_and_fills_zeros():
    x = torch.arange(1, 17, dtype=torch.uint8).view(1, 1, 4, 4)
    right = shift(x, 0, 1)
    assert right[0, 0, :, 0].eq(0).all() and torch.equal(right[0, 0, :, 1:], x[0, 0, :, :3])
    up = shift(x, -2, 0)
    assert torch.equal(up[0, 0, :2], x[0, 0, 2:]) and up[0, 0, 2:].eq(0).all()
    assert shift(x, 4, 0).eq(0).all()


def test_pixel_permutation_is_one_fixed_bijection():
    x = torch.randint(0, 256, (5, 3, 6, 6), dtype=torch.uint8)
    p = pixel_permutation((3, 6, 6), seed=1)
    assert torch.equal(p, pixel_permutation((3, 6, 6), seed=1))
    y = permute_pixels(x, p)
    assert torch.equal(y.flatten(2).sort(-1).values, x.flatten(2).sort(-1).values)
    assert torch.equal(permute_pixels(y, p.argsort()), x)
    # the same position moves the same way in every channel
    assert torch.equal(y[:, 0].flatten(1), x[:, 0].flatten(1)[:, p])


def test_forward_flops_count_two_per_multiply_add():
    model = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1, bias=False), nn.Flatten(), nn.Linear(4 * 8 * 8, 10))
    expected = 2 * (9 * 1 * 4 * 8 * 8) + 2 * (4 * 8 * 8 * 10)
    assert forward_flops(model, (1, 8, 8)) == expected


def test_iou_by_hand():
    assert iou((0, 0, 10, 10), (5, 0, 15, 10)) == pytest.approx(50 / 150)
    assert iou((0, 0, 10, 10), (0, 0, 10, 10)) == pytest.approx(1.0)
    assert iou((0, 0, 10, 10), (20, 20, 30, 30)) == 0.0


def test_windows_map_back_to_the_original_image():
    gray = torch.randint(0, 256, (1, 100, 150), dtype=torch.uint8)
    windows, boxes, (rows, cols) = windows_at(gray, 0.5, 25, 5)  # image shrunk to 50x75
    assert windows.shape == (rows * cols, 1, 25, 25) and (rows, cols) == (6, 11)
    assert torch.allclose(boxes[:, 2] - boxes[:, 0], torch.tensor(50.0))  # 25 px at scale 0.5
    assert boxes[-1].tolist() == pytest.approx([100, 50, 150, 100])
    scales = pyramid_scales(512, 512, 25)
    assert 25 / scales[0] == pytest.approx(51) and 25 / scales[-1] <= 512
    with pytest.raises(CnnlabError, match="too small"):
        pyramid_scales(20, 20, 25)


def test_fixed_threads_pins_and_restores():
    from cnnlab.experiments.runs import fixed_threads

    before, deterministic = torch.get_num_threads(), torch.are_deterministic_algorithms_enabled()
    with fixed_threads(1):
        assert torch.get_num_threads() == 1
        torch.use_deterministic_algorithms(True, warn_only=True)  # as fit(deterministic=True) leaves it
    assert torch.get_num_threads() == before and torch.are_deterministic_algorithms_enabled() == deterministic
    with pytest.raises(CnnlabError, match="threads 0"), fixed_threads(0):
        pass


class _Logits:
    """A stand-in LoadedModel: fixed logits per window (its mean pixel picks the row)."""

    def __init__(self, table):
        self.table = torch.tensor(table, dtype=torch.float32)

    def logits(self, images):
        return self.table[images.flatten(1).float().mean(1).long()]


def test_window_log_odds_match_the_probability_and_neighbours_average_them():
    from cnnlab.experiments.face_detector import neighbour_mean, window_log_odds, window_scores

    lm = _Logits([[0.0, 3.0], [2.0, -1.0], [0.0, 40.0]])  # the last: p rounds to 1.0 in float32
    windows = torch.tensor([0, 1, 2]).view(3, 1, 1, 1).expand(3, 1, 5, 5).to(torch.uint8)
    odds = window_log_odds(lm, windows, positive=1, batch_size=2)
    assert odds.tolist() == pytest.approx([3.0, -3.0, 40.0])
    assert torch.sigmoid(odds[:2]).tolist() == pytest.approx(window_scores(lm, windows, 1)[:2].tolist())
    grid = torch.zeros(5, 5)
    grid[2, 2] = 9.0  # a lone confident window is diluted; a block of them is not
    grid[:3, 4] = 1.0
    smooth = neighbour_mean(grid, 3)
    assert smooth[2, 2] == pytest.approx(1.0) and smooth[0, 0] == pytest.approx(0.0)
    assert smooth[0, 4] == pytest.approx((2 * 1.0) / 4) and torch.equal(neighbour_mean(grid, 1), grid)


@NEEDS_SKIMAGE
def test_jittered_faces_keep_the_originals_and_are_seeded():
    from cnnlab.experiments import faces

    crops = faces.lfw_crops().images[:4]
    copies = faces.jitter_faces(crops, 3, seed=1)
    assert copies.shape == (12, 1, 25, 25) and copies.dtype == torch.uint8
    assert torch.equal(copies[:4], crops) and not torch.equal(copies[4:8], crops)
    assert torch.equal(copies, faces.jitter_faces(crops, 3, seed=1))
    assert torch.equal(faces.jitter_faces(crops, 1, seed=1), crops)


# ----------------------------------------------------------------------------- experiments


def test_unknown_experiment_and_option_are_named():
    with pytest.raises(CnnlabError, match="unknown experiment 'nope' \\(known: faces, fc-vs-cnn, pooling\\)"):
        cnnlab.api.experiment("nope")
    with pytest.raises(CnnlabError, match="no option data"):
        cnnlab.api.experiment("faces", data="digits")


def test_pooling_variants_trade_compute_for_invariance(tmp_path):
    r = cnnlab.api.experiment("pooling", data="digits", epochs=1, train_size=400, test_size=200,
                              out=str(tmp_path), log=lambda *a: None)
    rows = {row["variant"]: row for row in r["rows"]}
    assert len({row["parameters"] for row in rows.values()}) == 1  # pooling and strides add no weights
    flops = {k: row["mflops"] for k, row in rows.items()}
    assert flops["max pool"] == pytest.approx(flops["avg pool"])  # FlopCounterMode counts no pooling
    assert flops["no downsampling"] > flops["max pool"] > flops["strided conv"]
    # without subsampling the feature maps slide with the image and global pooling forgets where:
    assert rows["no downsampling"]["feature_change_1"] < rows["strided conv"]["feature_change_1"]
    for row in rows.values():
        assert row["feature_change_4"] > row["feature_change_1"] > 0
    table = json.loads((tmp_path / "pooling.json").read_text())
    assert [row["variant"] for row in table["rows"]] == list(rows)
    assert (tmp_path / "pooling.md").read_text().count("\n|") >= 5 and (tmp_path / "pooling.png").stat().st_size > 0


@pytest.mark.slow
@pytest.mark.parametrize("data", ["xo"])
def test_the_mlp_ignores_pixel_order_the_cnn_does_not(tmp_path, data):
    r = cnnlab.api.experiment("fc-vs-cnn", data=data, epochs=2, train_size=1500, test_size=500,
                              out=str(tmp_path), log=lambda *a: None)
    mlp, cnn = r["rows"]
    assert (mlp["model"], cnn["model"]) == ("MLP", "CNN")
    assert abs(mlp["permuted_acc"] - mlp["test_acc"]) < 0.04  # the same problem to a fully connected net
    assert cnn["test_acc"] - cnn["permuted_acc"] > 0.10       # 3x3 filters need neighbouring pixels
    assert cnn["shift_2"] > mlp["shift_2"]                     # shared filters slide with the content
    assert mlp["first_layer_1080"] > 10**8 > 10**3 > cnn["first_layer_1080"]
    for name in ("fc_vs_cnn.json", "fc_vs_cnn.md", "fc_vs_cnn.png"):
        assert (tmp_path / name).stat().st_size > 0


def test_cli_experiment_errors_are_one_line(capsys):
    assert main(["experiment", "faces", "--data", "digits"]) == 2
    assert "no option data" in capsys.readouterr().err


def test_detect_faces_without_a_model_says_how_to_get_one(tmp_path, capsys):
    photo = tmp_path / "photo.png"
    Image.fromarray(np.zeros((40, 40), np.uint8)).save(photo)  # the photo is read first: it must exist
    assert main(["detect-faces", str(photo), "--checkpoint", str(tmp_path / "none.pt")]) == 2
    assert "cnnlab experiment faces" in capsys.readouterr().err


# ----------------------------------------------------------------------------- faces


FACE_EPOCHS = 30  # as the experiment: 20 leaves round-1 detections less sharp


@pytest.fixture(scope="module")
def face_detector(tmp_path_factory):
    from cnnlab.experiments import faces

    out = tmp_path_factory.mktemp("faces")
    data = faces.lfw_crops()
    splits = faces.fold_splits(data, faces.stratified_folds(data.labels, 5, seed=0), 0)
    _, lm = faces.train_face_cnn(splits, "fold1", out, epochs=FACE_EPOCHS, seed=0)
    detector, rows = faces.train_detector(splits, lm, out, epochs=FACE_EPOCHS, rounds=1, seed=0, log=lambda *a: None)
    return splits, detector, rows, out / faces.DETECTOR



@NEEDS_SKIMAGE
def test_lfw_folds_are_stratified_and_disjoint():
    from cnnlab.experiments import faces

    data = faces.lfw_crops()
    assert data.images.shape == (200, 1, 25, 25) and data.labels[:100].eq(faces.FACE).all()
    folds = faces.stratified_folds(data.labels, 5, seed=0)
    assert sorted(torch.cat(folds).tolist()) == list(range(200))
    assert all(int(data.labels[f].sum()) == 20 and len(f) == 40 for f in folds)
    splits = faces.fold_splits(data, folds, 0)
    assert [len(splits[s]) for s in ("train", "val", "test")] == [140, 20, 40]


@pytest.mark.slow
@NEEDS_SKIMAGE
def test_face_cnn_is_accurate_on_held_out_crops(face_detector):
    splits, _, rows, _ = face_detector
    assert rows[-1]["held_out_acc"] >= 0.9 and rows[-1]["mined"] > 0


@pytest.mark.slow
@NEEDS_SKIMAGE
def test_detector_finds_the_astronauts_face(face_detector):
    """One bootstrap round (the experiment runs two): the face is among the few best boxes."""
    from cnnlab.experiments import faces

    _, lm, _, _ = face_detector
    found = faces.find_faces(lm, faces.astronaut(), threshold=0.5)
    overlaps = [iou(box, faces.ASTRONAUT_FACE) for box in found["boxes"][:3]]
    assert max(overlaps) >= 0.5, overlaps


@pytest.mark.slow
@NEEDS_SKIMAGE
def test_cli_detect_faces_prints_boxes_as_json(face_detector, tmp_path, capsys):
    from PIL import Image

    from cnnlab.experiments import faces

    _, _, _, checkpoint = face_detector
    photo = tmp_path / "astronaut.png"
    Image.fromarray(faces.astronaut().permute(1, 2, 0).numpy()).save(photo)
    assert main(["detect-faces", str(photo), "--checkpoint", str(checkpoint), "--json", "--threshold", "0.5",
                 "--out", str(tmp_path / "det.png")]) == 0
    r = json.loads(capsys.readouterr().out)
    assert r["faces"] and set(r["faces"][0]) == {"box", "score"} and 0.5 <= r["faces"][0]["score"] <= 1
    assert max(iou(f["box"], faces.ASTRONAUT_FACE) for f in r["faces"][:3]) >= 0.5
    assert (tmp_path / "det.png").stat().st_size > 0
    assert main(["detect-faces", str(photo), "--checkpoint", str(checkpoint), "--scales", "x"]) == 2


# A reduced faces experiment (2 folds, 4 epochs, 1 bootstrap round on 3 photos, a coarse scan)
# in a fresh process; then the astronaut scanned again outside the experiment, as `cnnlab
# detect-faces` does, on the machine's threads. Figures and digests as JSON on stdout's last line.
_REDUCED_FACES = """
import hashlib, json, sys
import torch
from cnnlab.experiments import faces
digest = lambda tensors: hashlib.sha256(b"".join(t.numpy().tobytes() for t in tensors)).hexdigest()
r = faces.run(folds=2, epochs=4, rounds=1, threshold=0.0, photos=3, stride=4, out=sys.argv[1], log=lambda *a: None)
found = faces.find_faces(faces.load_detector(r["files"]["checkpoint"]), faces.astronaut(), stride=4)
print(json.dumps({"acc": [row["held_out_acc"] for row in r["rows"]], "boxes": r["detection"]["boxes"][:5],
                  "weights": digest(torch.load(r["files"]["checkpoint"], weights_only=True)["model"].values()),
                  "detect_faces": digest([found["boxes"], found["scores"], found["heatmap"]]),
                  "threads_after": torch.get_num_threads()}))
"""


@pytest.mark.slow
@NEEDS_SKIMAGE
def test_faces_experiment_does_not_depend_on_the_thread_count(tmp_path):
    """OMP_NUM_THREADS=1 and 2 used to train different detectors (the float sums of a conv's
    weight gradient are split between threads); the experiment now pins its own thread count."""
    results = {}
    for threads in (1, 2):  # one after the other: the CPU is shared
        env = {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads),
               "OMP_WAIT_POLICY": "PASSIVE"}
        done = subprocess.run([sys.executable, "-c", _REDUCED_FACES, str(tmp_path / f"threads{threads}")],
                              env=env, capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr[-2000:]
        results[threads] = json.loads(done.stdout.strip().splitlines()[-1])
        assert results[threads].pop("threads_after") == threads  # the machine's setting is restored
    assert results[1] == results[2]
    assert len(results[1]["acc"]) == 2 + 1 + 1 and results[1]["boxes"]  # 2 folds, their mean, 1 round
