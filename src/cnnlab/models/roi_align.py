"""RoIAlign (He et al. 2017) as a sparse matrix product, for a fast backward pass on the CPU.

Each output bin of each region is the average of ``sampling_ratio``**2 bilinear samples of
the feature map, i.e. a fixed weighted sum of at most 4 * sampling_ratio**2 feature-map
cells. Writing those weights as a sparse matrix S (regions * bins, B * H * W), the pooled
features are ``S @ F`` with F the map as (B * H * W, C) rows, and the backward pass is
``S^T @ grad``: one sparse product instead of torchvision's per-sample scatter, which
dominates Faster R-CNN's training step on small images on the CPU. Same numbers as
``torchvision.ops.roi_align(..., aligned=True)`` (checked in tests/test_detect.py).
"""
from __future__ import annotations

import warnings

import torch
from torch import Tensor
from torchvision.ops import MultiScaleRoIAlign


def roi_align_sparse(features: Tensor, rois: Tensor, output_size: int, spatial_scale: float,
                     sampling_ratio: int) -> Tensor:
    """features (B, C, H, W); rois (R, 5) as (batch index, x0, y0, x1, y1) -> (R, C, out, out)."""
    b, c, h, w = features.shape
    r, s, o = len(rois), sampling_ratio, output_size
    rois = rois.float()
    x0, y0 = rois[:, 1] * spatial_scale - 0.5, rois[:, 2] * spatial_scale - 0.5  # aligned: pixel centres
    bin_w = (rois[:, 3] * spatial_scale - 0.5 - x0) / o  # (R,)
    bin_h = (rois[:, 4] * spatial_scale - 0.5 - y0) / o
    steps = (torch.arange(o * s, device=rois.device, dtype=torch.float32) + 0.5) / s  # (o*s,) in bins
    ys = y0[:, None] + steps * bin_h[:, None]  # (R, o*s) sample rows
    xs = x0[:, None] + steps * bin_w[:, None]  # (R, o*s) sample columns
    (ylo, yhi, wy0, wy1), (xlo, xhi, wx0, wx1) = _taps(ys, h), _taps(xs, w)
    # taps per (region, sample row, sample col, corner): input cell and weight
    base = rois[:, 0].long()[:, None, None] * h * w
    cols = torch.stack([base + yy[:, :, None] * w + xx[:, None, :]
                        for yy in (ylo, yhi) for xx in (xlo, xhi)], -1)  # (R, o*s, o*s, 4)
    vals = torch.stack([wy[:, :, None] * wx[:, None, :] / (s * s)
                        for wy in (wy0, wy1) for wx in (wx0, wx1)], -1)
    # ordered by output bin, each bin's 4*s*s taps form one row of a CSR matrix (no sorting needed)
    crow = torch.arange(0, r * o * o + 1, device=rois.device) * (4 * s * s)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # "sparse CSR support is in beta"
        weights = torch.sparse_csr_tensor(crow, _by_bin(cols, o, s), _by_bin(vals, o, s),
                                          (r * o * o, b * h * w), check_invariants=False)
    flat = features.permute(0, 2, 3, 1).reshape(b * h * w, c).float()  # (B*H*W, C); MKL's sparse mm is fp32
    with torch.autocast(features.device.type, enabled=False):
        pooled = weights @ flat  # (R*o*o, C); backward: weights^T @ grad
    return pooled.view(r, o, o, c).permute(0, 3, 1, 2).to(features.dtype)  # (R, C, o, o)


def _by_bin(t: Tensor, o: int, s: int) -> Tensor:
    """(R, o*s, o*s, 4) -> flat, in (R, bin row, bin col, sample row, sample col, corner) order."""
    return t.view(len(t), o, s, o, s, 4).permute(0, 1, 3, 2, 4, 5).reshape(-1)


def _taps(pos: Tensor, size: int) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Bilinear taps along one axis, as torchvision's roi_align: (low, high, weight low, weight high);
    samples beyond [-1, size] weigh nothing, others are clamped into the map."""
    outside = (pos < -1.0) | (pos > size)
    pos = pos.clamp(min=0)
    low = pos.floor().long().clamp(max=size - 1)
    at_edge = low >= size - 1
    high = torch.where(at_edge, low, low + 1)
    pos = torch.where(at_edge, low.float(), pos)
    frac = pos - low.float()
    keep = (~outside).float()
    return low, high, (1 - frac) * keep, frac * keep


class SparseMultiScaleRoIAlign(MultiScaleRoIAlign):
    """torchvision's ``MultiScaleRoIAlign`` (level per box size, scales from the maps) pooling with
    ``roi_align_sparse``; ``aligned=True`` sampling as torchvision's Faster R-CNN heads use."""

    def forward(self, x: dict[str, Tensor], boxes: list[Tensor], image_shapes: list[tuple[int, int]]) -> Tensor:
        maps = [x[k] for k in self.featmap_names]
        if maps[0].device.type != "cpu":  # GPUs: torchvision's kernel is the fast one there
            return super().forward(x, boxes, image_shapes)
        if self.scales is None or self.map_levels is None:
            self.scales, self.map_levels = _setup(maps, image_shapes, self.canonical_scale, self.canonical_level)
        rois = torch.cat([torch.cat([torch.full_like(b[:, :1], i), b], 1) for i, b in enumerate(boxes)])  # (R, 5)
        o = self.output_size[0]
        if len(maps) == 1:
            return roi_align_sparse(maps[0], rois, o, self.scales[0], self.sampling_ratio)
        levels = self.map_levels(boxes)
        out = maps[0].new_zeros(len(rois), maps[0].shape[1], o, o)
        for level, (feature, scale) in enumerate(zip(maps, self.scales)):
            idx = torch.where(levels == level)[0]
            if len(idx):
                out[idx] = roi_align_sparse(feature, rois[idx], o, scale, self.sampling_ratio).to(out.dtype)
        return out


def _setup(maps, image_shapes, canonical_scale, canonical_level):
    from torchvision.ops.poolers import _setup_scales

    return _setup_scales(maps, image_shapes, canonical_scale, canonical_level)
