"""torchvision ImageNet weights for ResNet / VGG / GoogLeNet / MobileNet (``cnnlab.models.pretrained``).

No download: each test writes a torchvision model's (random) state dict under the file name
torchvision's weights use, in a temporary $TORCH_HOME, and checks that cnnlab loads exactly
those tensors and computes what the torchvision model computes.
"""
from __future__ import annotations

import pytest
import torch
import torchvision
from torch import nn

from cnnlab.errors import CnnlabError
from cnnlab.models import get_model, list_models, model_info
from cnnlab.models import pretrained as pt

MOBILENETS = ("mobilenet_v2", "mobilenet_v3_small", "mobilenet_v3_large")


@pytest.fixture
def torch_home(tmp_path, monkeypatch):
    """A fresh, empty $TORCH_HOME; downloads fail as they do offline."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))

    def offline(url, folder):
        raise OSError("<urlopen error [Errno -2] Name or service not known>")

    monkeypatch.setattr(pt, "_download", offline)
    return tmp_path


def _save(name: str, model: nn.Module) -> dict:
    path = pt.weights_path(name)
    path.parent.mkdir(parents=True, exist_ok=True)
    state = model.state_dict()
    torch.save(state, path)
    return state


def _kaiming(model: nn.Module) -> nn.Module:
    """Weights under which the output depends on the input (torchvision's GoogLeNet init fades it out)."""
    for m in model.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
    return model


def _normalise(pixels: torch.Tensor, mean, std) -> torch.Tensor:
    """(B, 3, H, W) on the 0..1 scale -> normalised per channel."""
    return (pixels - torch.tensor(mean).view(1, 3, 1, 1)) / torch.tensor(std).view(1, 3, 1, 1)


# ----------------------------------------------------------------------------- where the file lives


def test_weight_file_is_torchvisions_in_the_hub_cache(torch_home):
    assert pt.weights_folder() == torch_home / "hub" / "checkpoints"
    assert pt.weights_path("resnet18").name == "resnet18-f37072fd.pth"
    assert pt.weights_url("resnet18") == torchvision.models.ResNet18_Weights.IMAGENET1K_V1.url
    assert pt.weights_path("vgg16").name == "vgg16-397923af.pth"
    assert pt.weights_path("googlenet").name == "googlenet-1378be20.pth"


def test_missing_file_offline_is_one_line_naming_file_folder_and_url(torch_home):
    with pytest.raises(CnnlabError) as e:
        get_model("resnet50", pretrained=True)
    msg = str(e.value)
    assert "\n" not in msg
    folder = str(torch_home / "hub" / "checkpoints")
    for part in ("resnet50-0676ba61.pth", folder, "https://download.pytorch.org/models/resnet50-0676ba61.pth",
                 "OSError"):
        assert part in msg


def test_unreadable_file_is_named(torch_home):
    path = pt.weights_path("resnet18")
    path.parent.mkdir(parents=True)
    path.write_bytes(b"not a torch file")
    with pytest.raises(CnnlabError, match="resnet18-f37072fd.pth is not a readable weight file"):
        get_model("resnet18", pretrained=True)


def test_file_of_another_model_is_refused(torch_home):
    _save("resnet18", torchvision.models.resnet34())
    with pytest.raises(CnnlabError, match="does not fit the model"):
        get_model("resnet18", pretrained=True)


# ----------------------------------------------------------------------------- what is loaded


def test_resnet18_loads_exactly_the_file_and_predicts_as_torchvision(torch_home):
    torch.manual_seed(0)
    tv = torchvision.models.resnet18().eval()
    state = _save("resnet18", tv)
    model = get_model("resnet18", pretrained=True).eval()
    for k, v in model.state_dict().items():
        assert torch.equal(v, state[k]), k
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        ours, theirs = model(x), tv(x)
    torch.testing.assert_close(ours, theirs)
    assert not torch.allclose(ours[0], ours[1])  # the output depends on the input


def test_transfer_keeps_fresh_head_and_adapts_grey_stem(torch_home):
    torch.manual_seed(0)
    state = _save("resnet18", torchvision.models.resnet18())
    model = get_model("resnet18", pretrained=True, num_classes=5, in_channels=1)
    assert model.fc.out_features == 5 and model.conv1.weight.shape == (64, 1, 7, 7)
    torch.testing.assert_close(model.conv1.weight, state["conv1.weight"].sum(1, keepdim=True))
    assert torch.equal(model.layer4[1].conv2.weight, state["layer4.1.conv2.weight"])
    model = get_model("resnet18", pretrained=True, in_channels=4)
    torch.testing.assert_close(model.conv1.weight[:, :3], state["conv1.weight"] * 3 / 4)


def test_googlenet_drops_aux_heads_and_its_mean_std_match_transform_input(torch_home):
    torch.manual_seed(0)
    tv = _kaiming(torchvision.models.googlenet(aux_logits=True, init_weights=False, transform_input=False))
    state = _save("googlenet", tv)
    assert any(k.startswith("aux1.") for k in state)
    model = get_model("googlenet", pretrained=True).eval()
    assert torch.equal(model.inception5b.branch1.conv.weight, state["inception5b.branch1.conv.weight"])
    # torchvision runs these weights with transform_input=True on ImageNet-normalised pixels
    tv.transform_input, tv.aux_logits, tv.aux1, tv.aux2 = True, False, None, None
    tv.eval()
    pixels = torch.rand(2, 3, 64, 64)  # 0..1
    info = model_info("googlenet")
    imagenet, ours = _normalise(pixels, pt.IMAGENET_MEAN, pt.IMAGENET_STD), _normalise(pixels, info.mean, info.std)
    with torch.no_grad():
        torch.testing.assert_close(model(ours), tv(imagenet), atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("name", ["vgg11", "vgg11_bn", "vgg16", "vgg16_bn", "vgg19_bn", "resnet50", "resnet152",
                                  "mobilenet_v2", "mobilenet_v3_small", "mobilenet_v3_large"])
def test_state_dict_keys_and_shapes_match_torchvisions(name):
    with torch.device("meta"):  # no memory: VGG-16 alone is 528 MB
        theirs = getattr(torchvision.models, name)().state_dict()
        ours = get_model(name).state_dict()
    assert {k: v.shape for k, v in ours.items()} == {k: v.shape for k, v in theirs.items()}


def test_vgg_keeps_fresh_last_layer_for_another_head(torch_home, monkeypatch):
    torch.manual_seed(0)
    with torch.device("meta"):
        shapes = {k: v.shape for k, v in torchvision.models.vgg11().state_dict().items()}
    state = {k: torch.randn(s) * 0.01 for k, s in shapes.items()}  # VGG-11 at random, in memory
    monkeypatch.setattr(pt, "load_state", lambda name: dict(state))
    model = get_model("vgg11", pretrained=True, num_classes=7, in_channels=1)
    assert model.classifier[6].out_features == 7
    assert torch.equal(model.classifier[3].weight, state["classifier.3.weight"])
    torch.testing.assert_close(model.features[0].weight, state["features.0.weight"].sum(1, keepdim=True))


def test_registry_marks_the_torchvision_models_pretrained():
    for name in ("resnet18", "resnet34", "resnet50", "resnet101", "resnet152", "vgg11", "vgg16", "vgg19_bn",
                 "googlenet", *MOBILENETS):
        info = model_info(name)
        assert info.pretrained and info.mean and info.std and pt.has_torchvision_weights(name)
    assert model_info("resnet18").mean == pt.IMAGENET_MEAN
    # the CIFAR ResNets and the lecture's own nets still have none, and say which models do
    assert not model_info("resnet20").pretrained
    with pytest.raises(CnnlabError, match="resnet18"):
        get_model("resnet20", pretrained=True)
    assert "resnet18" in list_models() and "efficientnet_lite0" in list_models()


# ----------------------------------------------------------------------------- MobileNet-V2 / V3


def _scramble(model: nn.Module) -> nn.Module:
    """Every tensor away from its initial value (BatchNorm's ones and zeros included), so that an
    equal tensor after loading was loaded, and the output depends on the input."""
    _kaiming(model)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            nn.init.uniform_(m.weight, 0.5, 1.5)
            nn.init.normal_(m.bias, std=0.1)
            nn.init.normal_(m.running_mean, std=0.1)
            nn.init.uniform_(m.running_var, 0.5, 1.5)
    return model


def test_mobilenet_files_are_torchvisions(torch_home):
    assert pt.weights_path("mobilenet_v2").name == "mobilenet_v2-b0353104.pth"
    assert pt.weights_path("mobilenet_v3_small").name == "mobilenet_v3_small-047dcff4.pth"
    assert pt.weights_path("mobilenet_v3_large").name == "mobilenet_v3_large-8738ca79.pth"
    assert pt.weights_url("mobilenet_v2") == torchvision.models.MobileNet_V2_Weights.IMAGENET1K_V1.url


@pytest.mark.parametrize("name", MOBILENETS)
def test_mobilenet_loads_exactly_the_file_and_predicts_as_torchvision(torch_home, name):
    torch.manual_seed(0)
    tv = _scramble(getattr(torchvision.models, name)()).eval()
    state = _save(name, tv)
    model = get_model(name, pretrained=True).eval()
    own = model.state_dict()
    assert own.keys() == state.keys()
    for k, v in own.items():
        assert torch.equal(v, state[k]), k
    info = model_info(name)
    x = _normalise(torch.rand(2, 3, 64, 64), info.mean, info.std)
    with torch.no_grad():
        ours, theirs = model(x), tv(x)
    torch.testing.assert_close(ours, theirs)
    assert not torch.allclose(ours[0], ours[1])  # the output depends on the input


@pytest.mark.parametrize("name", MOBILENETS)
def test_mobilenet_missing_file_offline_is_one_line(torch_home, name):
    with pytest.raises(CnnlabError) as e:
        get_model(name, pretrained=True)
    msg = str(e.value)
    assert "\n" not in msg
    for part in (pt.weights_path(name).name, str(torch_home / "hub" / "checkpoints"), pt.weights_url(name)):
        assert part in msg


@pytest.mark.parametrize("name, last", [("mobilenet_v2", "classifier.1"), ("mobilenet_v3_large", "classifier.3")])
def test_mobilenet_transfer_keeps_fresh_last_layer_and_adapts_grey_stem(torch_home, name, last):
    torch.manual_seed(0)
    state = _save(name, _scramble(getattr(torchvision.models, name)()))
    model = get_model(name, pretrained=True, num_classes=5, in_channels=1)
    own = model.state_dict()
    assert own[f"{last}.weight"].shape[0] == 5 and model.features[0][0].in_channels == 1
    torch.testing.assert_close(own["features.0.0.weight"], state["features.0.0.weight"].sum(1, keepdim=True))
    loaded = [k for k in own if k not in ("features.0.0.weight", f"{last}.weight", f"{last}.bias")]
    assert all(torch.equal(own[k], state[k]) for k in loaded)  # V3's hidden classifier.0 included
    assert model(torch.randn(2, 1, 32, 32)).shape == (2, 5)


@pytest.mark.parametrize("name, expected", [("mobilenet_v2", 3_504_872), ("mobilenet_v3_small", 2_542_856),
                                            ("mobilenet_v3_large", 5_483_032)])
def test_mobilenet_parameter_count_is_torchvisions(name, expected):
    with torch.device("meta"):
        assert sum(p.numel() for p in get_model(name).parameters()) == expected


# ----------------------------------------------------------------------------- through the front ends


def test_fcn_backbone_gets_the_weights(torch_home):
    torch.manual_seed(0)
    state = _save("resnet18", torchvision.models.resnet18())
    model = get_model("fcn8s", num_classes=3, backbone="resnet18", pretrained=True)
    assert torch.equal(model.backbone.body.layer3[0].conv1.weight, state["layer3.0.conv1.weight"])
    assert model(torch.randn(1, 3, 64, 96)).shape == (1, 3, 64, 96)
    with pytest.raises(CnnlabError, match="lecture_cnn"):  # no weights for the lecture's CNN
        get_model("fcn8s", num_classes=3, backbone="lecture_cnn", pretrained=True)


def test_loaded_pretrained_model_predicts_imagenet_classes(torch_home):
    from cnnlab.deploy.pytorch_model import LoadedModel

    torch.manual_seed(0)
    tv = torchvision.models.resnet18().eval()
    _save("resnet18", tv)
    lm = LoadedModel.from_pretrained("resnet18", device="cpu")
    assert len(lm.task.classes) == 1000 and lm.task.classes[285] == "Egyptian cat"
    image = torch.randint(0, 256, (1, 3, 224, 224), dtype=torch.uint8)
    x = _normalise(image.float() / 255, pt.IMAGENET_MEAN, pt.IMAGENET_STD)
    with torch.no_grad():
        torch.testing.assert_close(lm.logits(image), tv(x), atol=1e-4, rtol=1e-4)
