"""A fast small-image CNN after Keller Jordan's airbench94 (CIFAR-10 to 94% in seconds on a GPU).

    model = AirbenchNet(num_classes=10, in_channels=3)            # widths 64/256/256, ~2M parameters
    model(torch.randn(8, 3, 32, 32)).shape   # (8, 10) logits

The shape, as airbench draws it:

    stem     2x2 conv, no padding, 2*C*2*2 channels (24 for RGB) -> GELU     "patch whitening"
    block1   3x3 conv -> 2x2 max-pool -> BN -> GELU -> 3x3 conv -> BN -> GELU   (64 channels)
    block2   the same                                                         (256 channels)
    block3   the same                                                         (256 channels)
    head     global max-pool -> linear (no bias) -> x 1/9

Three things that make it train fast, kept from airbench:

* **Patch whitening.** The stem's filters are the eigenvectors of the covariance of 2x2 input
  patches, scaled by 1/sqrt(eigenvalue), and their negatives; they stay frozen (the bias trains).
  The covariance comes from the first training batch the model sees (a data-dependent
  initialisation, like weight normalisation's): on the first ``forward`` in training mode the
  stem whitens itself once, and the ``whitened`` buffer records it, so checkpoints keep it.
  Under DDP the patch statistics are summed over processes so every rank gets the same filters.
* **Partial identity init.** Each 3x3 conv starts as the identity on its first input channels
  (``dirac_``), so the net starts close to a shallow one.
* **No BN scale, cooled logits.** BatchNorm learns only its shift (its scale stays 1) with a fast
  running-statistics momentum, and the logits are scaled by 1/9 (``logit_scale``).

One thing added to airbench: **BatchNorm statistics of the weights being evaluated.** A running
average is gathered during the forward pass, *before* the optimizer step that follows it, so after
training the running statistics always describe the previous weights. airbench's learning rates
are so high that, early in a run (a one-cycle peak reached within a few dozen steps, as on a
small dataset), one SGD step moves the conv weights by 5-9% and the eval-mode network, normalising
by the previous step's statistics, collapses to chance while train mode is at 80%
(benchmarks/RESULTS.md, "Recipes on 10% subsets"). So when the model leaves training mode
(``model.eval()``) after a training step, it re-estimates the statistics from the last training
batch with the current weights (``refresh_statistics``; PreciseBN with one batch). Loading a state
dict drops that batch: loaded statistics belong to the loaded weights.

The 2x2 pools after each block map 32x32 -> 15 -> 7 -> 3 (28x28 -> 13 -> 6 -> 3); the head's
global max-pool takes any remaining size, so the default three groups need inputs of 16x16 or more.
"""
from __future__ import annotations

from collections import OrderedDict

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn

from cnnlab.errors import CnnlabError
from cnnlab.models.common import check_pretrained
from cnnlab.models.registry import register_model

_ACTIVATIONS = {"gelu": nn.GELU, "relu": nn.ReLU}


# ---------------------------------------------------------------------------------------------
# layers
# ---------------------------------------------------------------------------------------------

class WhiteningStem(nn.Module):
    """2x2 conv whose frozen filters whiten input patches (set from the first training batch)."""

    def __init__(self, in_channels: int, kernel_size: int = 2, eps: float = 5e-4, whiten: bool = True):
        super().__init__()
        patch = in_channels * kernel_size * kernel_size  # numbers in one input patch
        self.conv = nn.Conv2d(in_channels, 2 * patch, kernel_size, padding=0, bias=True)
        self.eps = eps  # added to the eigenvalues: bounds the gain on near-constant directions
        self.whiten = whiten
        self.register_buffer("whitened", torch.zeros((), dtype=torch.bool))
        self._pending = whiten  # a python flag, so the buffer is read once, not on every step
        if whiten:
            self.conv.weight.requires_grad_(False)  # frozen once whitened; the bias still trains

    @torch.no_grad()
    def _whiten_from(self, x: torch.Tensor) -> None:
        """Set the filters from the patches of ``x`` (B, C, H, W): eigenvectors / sqrt(eigenvalues)."""
        c, k = self.conv.in_channels, self.conv.kernel_size[0]
        patches = x.double().unfold(2, k, 1).unfold(3, k, 1)  # (B, C, H', W', k, k)
        patches = patches.permute(0, 2, 3, 1, 4, 5).reshape(-1, c * k * k)  # (B*H'*W', C*k*k)
        stats = torch.cat([(patches.T @ patches).flatten(), patches.new_tensor([len(patches)])])
        if dist.is_available() and dist.is_initialized():
            dist.all_reduce(stats)  # every rank gets the same filters
        n = stats[-1]
        covariance = stats[:-1].view(c * k * k, c * k * k) / n  # second moment of the patches
        eigenvalues, eigenvectors = torch.linalg.eigh(covariance)  # ascending
        filters = (eigenvectors.T / (eigenvalues[:, None] + self.eps).sqrt()).flip(0)  # largest first
        filters = filters.reshape(c * k * k, c, k, k)
        weight = self.conv.weight
        weight.copy_(torch.cat([filters, -filters]).to(weight.dtype))
        self.whitened.fill_(True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self._pending and self.training and not x.is_meta:
            if not bool(self.whitened):  # not restored from a checkpoint
                with torch.autocast(x.device.type, enabled=False):
                    self._whiten_from(x)
            self._pending = False
        return self.conv(x)  # (B, 2*C*k*k, H-k+1, W-k+1)


class BatchNorm(nn.BatchNorm2d):
    """BatchNorm that learns only its shift (airbench); ``momentum`` weighs the new batch.

    The shift is stored divided by ``bias_scale`` and multiplied back in ``forward``: plain SGD
    then moves the shift ``bias_scale**2`` times faster than the other weights, which is
    airbench's 64x learning rate for BatchNorm biases without optimizer parameter groups.
    """

    def __init__(self, channels: int, momentum: float = 0.4, scale: bool = False, bias_scale: float = 1.0):
        super().__init__(channels, momentum=momentum)
        self.weight.requires_grad_(scale)
        self.bias_scale = bias_scale

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.bias_scale == 1.0:
            return super().forward(x)
        use_batch = self.training or self.running_mean is None
        if self.training and self.num_batches_tracked is not None:
            self.num_batches_tracked.add_(1)
        return F.batch_norm(x, self.running_mean, self.running_var, self.weight, self.bias * self.bias_scale,
                            use_batch, self.momentum, self.eps)


def _conv3x3(in_channels: int, out_channels: int) -> nn.Conv2d:
    conv = nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False)
    with torch.no_grad():
        if not conv.weight.is_meta:
            n = min(in_channels, out_channels)
            nn.init.dirac_(conv.weight[:n, :n])  # identity on the first channels
    return conv


class ConvGroup(nn.Sequential):
    """conv -> pool -> BN -> act -> conv -> BN -> act (the pool early: the first conv sees full size)."""

    def __init__(self, in_channels: int, out_channels: int, act: type[nn.Module], bn_momentum: float,
                 bn_scale: bool, bias_scale: float):
        super().__init__(OrderedDict(
            conv1=_conv3x3(in_channels, out_channels),
            pool=nn.MaxPool2d(2),
            norm1=BatchNorm(out_channels, bn_momentum, bn_scale, bias_scale),
            act1=act(),
            conv2=_conv3x3(out_channels, out_channels),
            norm2=BatchNorm(out_channels, bn_momentum, bn_scale, bias_scale),
            act2=act(),
        ))


# ---------------------------------------------------------------------------------------------
# the network
# ---------------------------------------------------------------------------------------------

class AirbenchNet(nn.Module):
    """Whitening stem, three conv groups, global max-pool and a cooled linear head."""

    def __init__(self, num_classes: int = 10, in_channels: int = 3, *,
                 widths: tuple[int, ...] = (64, 256, 256),  # output channels of each conv group
                 activation: str = "gelu",                   # gelu | relu
                 whiten: bool = True,                        # patch-whitening stem (else a trained 2x2 conv)
                 bn_momentum: float = 0.4,                   # running-statistics momentum (torch's sense)
                 bn_scale: bool = False,                     # let BatchNorm learn its scale too
                 bn_bias_lr: float = 1.0,                    # BatchNorm shifts learn this many times faster
                                                             # (airbench and recipes/cifar10.yaml: 64)
                 logit_scale: float = 1 / 9,                 # multiplies the logits
                 refresh_statistics: bool = True):           # model.eval() after training re-estimates the
                                                             # BatchNorm statistics with the current weights
        super().__init__()
        if activation not in _ACTIVATIONS:
            raise CnnlabError(f"activation must be one of {', '.join(_ACTIVATIONS)}, got {activation!r}")
        if not widths:
            raise CnnlabError("widths must name at least one conv group")
        self.num_classes, self.in_channels = num_classes, in_channels
        self.logit_scale = logit_scale
        act = _ACTIVATIONS[activation]

        stem = WhiteningStem(in_channels, whiten=whiten)
        blocks = OrderedDict(stem=stem, stem_act=act())
        c = stem.conv.out_channels
        for i, width in enumerate(widths, 1):
            blocks[f"block{i}"] = ConvGroup(c, width, act, bn_momentum, bn_scale, bn_bias_lr ** 0.5)
            c = width
        self.features = nn.Sequential(blocks)
        self.pool = nn.AdaptiveMaxPool2d(1)
        self.fc = nn.Linear(c, num_classes, bias=False)
        self.refresh_statistics = refresh_statistics
        self._last_batch: torch.Tensor | None = None  # the last training input, until eval() uses it
        self.register_load_state_dict_post_hook(_forget_last_batch)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        if (self.refresh_statistics and self.training and torch.is_grad_enabled() and not x.is_meta
                and not torch.compiler.is_compiling()):
            self._last_batch = x.detach()  # a reference, no copy: the step's input (B, C, H, W)
        return self.features(x)  # (B, widths[-1], h, w): 3x3 for 28x28 and 32x32 inputs

    def forward_head(self, features: torch.Tensor) -> torch.Tensor:
        x = torch.flatten(self.pool(features), 1)  # (B, widths[-1])
        return self.fc(x) * self.logit_scale  # (B, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))

    def train(self, mode: bool = True) -> "AirbenchNet":
        if not mode and self.training and self._last_batch is not None:
            self._refresh_batchnorm()
        return super().train(mode)

    @torch.no_grad()
    def _refresh_batchnorm(self) -> None:
        """Replace each BatchNorm's running statistics by those of the last training batch under the
        current weights (the optimizer has stepped since that batch's forward pass gathered them)."""
        x, self._last_batch = self._last_batch, None
        norms = [m for m in self.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
        momenta = [m.momentum for m in norms]
        for m in norms:
            m.momentum = 1.0  # running statistics := this batch's
        try:
            with torch.autocast(x.device.type, enabled=False):
                self.features(x.to(self.fc.weight.dtype))  # still in training mode: normalised by the batch (a bf16 step input as fp32), running stats replaced
        finally:
            for m, momentum in zip(norms, momenta):
                m.momentum = momentum


def _forget_last_batch(module: AirbenchNet, incompatible_keys) -> None:
    module._last_batch = None  # loaded running statistics belong to the loaded weights


@register_model("airbench", input_size=(3, 32, 32), paper="Jordan 2024, airbench94 (94% on CIFAR-10 in 3.8 s)",
                tags=("cifar", "fast"), head="fc")
def airbench(num_classes: int = 10, in_channels: int = 3, pretrained: bool = False, **kwargs) -> AirbenchNet:
    """airbench94's network (see :class:`AirbenchNet` for ``widths``, ``activation``, ``whiten``...)."""
    check_pretrained("airbench", pretrained)
    return AirbenchNet(num_classes, in_channels, **kwargs)
