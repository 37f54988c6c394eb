"""BatchNorm folded into convolutions for a frozen encoder (models/fold.py)."""
import torch
from torch import nn

from cnnlab.models import get_model
from cnnlab.models.fold import fold_batchnorm


def _randomise_statistics(net):
    g = torch.Generator().manual_seed(0)
    for m in net.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.copy_(torch.randn(m.num_features, generator=g) * 0.1)
            m.running_var.copy_(torch.rand(m.num_features, generator=g) + 0.5)
            m.weight.data.copy_(torch.rand(m.num_features, generator=g) + 0.5)
            m.bias.data.copy_(torch.randn(m.num_features, generator=g) * 0.1)


def test_folded_resnet_has_no_batchnorm_and_the_same_features():
    net = get_model("resnet18", num_classes=10)
    _randomise_statistics(net)
    net.train()  # the original's mode is left alone; the copy is in eval mode
    folded = fold_batchnorm(net, "forward_features")
    assert not any(isinstance(m, nn.BatchNorm2d) for m in folded.modules())
    assert net.training and not folded.training
    assert not any(p.requires_grad for p in folded.parameters())
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        expected = net.eval().forward_features(x)
        assert torch.allclose(folded(x), expected, rtol=1e-4, atol=1e-5)


def test_a_batchnorm_that_is_not_after_a_convolution_stays():
    net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.BatchNorm2d(4), nn.Conv2d(4, 4, 1), nn.BatchNorm2d(4))
    _randomise_statistics(net)
    folded = fold_batchnorm(net)
    assert sum(isinstance(m, nn.BatchNorm2d) for m in folded.modules()) == 1
    x = torch.randn(2, 3, 16, 16)
    with torch.no_grad():
        assert torch.allclose(folded(x), net.eval()(x), rtol=1e-4, atol=1e-5)


def test_an_untraceable_network_gives_none():
    class Branchy(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv, self.bn = nn.Conv2d(3, 3, 1), nn.BatchNorm2d(3)

        def forward(self, x):
            return self.bn(self.conv(x)) if x.sum() > 0 else x  # depends on the data: fx cannot trace it

    assert fold_batchnorm(Branchy()) is None
