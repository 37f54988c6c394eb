"""Faster R-CNN (Ren, He, Girshick & Sun 2015) from torchvision's detection parts.

A backbone CNN turns the image into feature maps; the region proposal network (RPN) slides
over them and scores anchors (boxes of several sizes and aspect ratios at every position) as
object or not, regressing each to a proposal; RoIAlign pools a fixed 7x7 grid of features
from each proposal (on the CPU as a sparse matrix product, ``cnnlab.models.roi_align``); a box head classifies it (background + classes) and refines its box;
per-class non-maximum suppression removes duplicates. Optionally a feature pyramid (FPN, Lin
et al. 2017) gives every stage's map to the RPN and RoIAlign.

    model = get_model("fasterrcnn", num_classes=7, backbone="lecture_cnn", min_size=64, max_size=64)
    losses = model(images, targets)     # train mode: dict of 4 losses
    model.eval(); model(images)         # [{"boxes", "labels", "scores"}] per image

Backbones (``backbone=``): ``lecture_cnn`` (the lecture's conv-BN-ReLU-pool blocks, strides
2/4/8), ``resnet18`` (stem..layer3, strides 4/8/16) and ``efficientnet_lite0`` (stem..stage 5,
strides 4/8/16; ``pretrained=True`` loads its offline ImageNet weights; resnet18's come from
torchvision's file in the torch hub cache, ``cnnlab.models.pretrained``). Anchor sizes are in
pixels of the image the model sees (after resizing to ``min_size``/``max_size``).
"""
from __future__ import annotations

from collections import OrderedDict

import torch
from torch import Tensor, nn
from torchvision.models.detection import FasterRCNN as TorchvisionFasterRCNN
from torchvision.models.detection.anchor_utils import AnchorGenerator
from torchvision.models.detection.faster_rcnn import FastRCNNPredictor, TwoMLPHead
from torchvision.ops import FeaturePyramidNetwork
from torchvision.ops.feature_pyramid_network import LastLevelMaxPool

from cnnlab.errors import CnnlabError
from cnnlab.models.registry import register_model
from cnnlab.models.roi_align import SparseMultiScaleRoIAlign

BACKBONES = ("lecture_cnn", "resnet18", "efficientnet_lite0")
IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


# ---------------------------------------------------------------------------------------
# Backbones: a few stages, each halving (or quartering) the feature map
# ---------------------------------------------------------------------------------------


class Stages(nn.Module):
    """Run ``stages`` in turn; return the last map, or with ``fpn`` every map through an FPN."""

    def __init__(self, stages: list[nn.Module], channels: list[int], fpn: bool, fpn_channels: int = 64):
        super().__init__()
        self.stages = nn.ModuleList(stages)
        self.fpn = FeaturePyramidNetwork(channels, fpn_channels, LastLevelMaxPool()) if fpn else None
        self.out_channels = fpn_channels if fpn else channels[-1]
        self.levels = len(stages) + 1 if fpn else 1  # LastLevelMaxPool adds one coarser level

    def forward(self, x: Tensor) -> Tensor | OrderedDict:
        maps = OrderedDict()
        for i, stage in enumerate(self.stages):
            x = stage(x)
            maps[str(i)] = x  # (B, C_i, H / stride_i, W / stride_i)
        return self.fpn(maps) if self.fpn is not None else x


def _lecture_cnn_stages(in_channels: int, widths=(32, 64, 128)) -> tuple[list[nn.Module], list[int]]:
    from cnnlab.models.lecture_cnn import LectureCNN

    cnn = LectureCNN(num_classes=1, in_channels=in_channels, widths=tuple(widths))
    return list(cnn.features), list(widths)


def _resnet18_stages(in_channels: int, pretrained: bool) -> tuple[list[nn.Module], list[int]]:
    from cnnlab.models.resnet import resnet18

    r = resnet18(num_classes=1, in_channels=in_channels, pretrained=pretrained)  # torchvision's ImageNet file
    stem = nn.Sequential(r.conv1, r.bn1, r.relu, r.maxpool, r.layer1)  # stride 4
    return [stem, r.layer2, r.layer3], [64, 128, 256]


class _EfficientNetStage(nn.Module):
    """A run of the package's MBConv blocks (their forward takes no drop-connect here)."""

    def __init__(self, prefix: nn.Module | None, blocks: list[nn.Module]):
        super().__init__()
        self.prefix, self.blocks = prefix, nn.ModuleList(blocks)

    def forward(self, x: Tensor) -> Tensor:
        if self.prefix is not None:
            x = self.prefix(x)
        for block in self.blocks:
            x = block(x)
        return x


def _efficientnet_stages(in_channels: int, pretrained: bool) -> tuple[list[nn.Module], list[int]]:
    from cnnlab.models.efficientnet import efficientnet_lite0

    net = efficientnet_lite0(num_classes=1000, in_channels=in_channels, pretrained=pretrained).net
    stem = nn.Sequential(net._conv_stem, net._bn0, net._swish)  # stride 2
    b = list(net._blocks)
    return ([_EfficientNetStage(stem, b[:3]), _EfficientNetStage(None, b[3:5]), _EfficientNetStage(None, b[5:11])],
            [24, 40, 112])  # strides 4, 8, 16


def build_backbone(name: str, in_channels: int, fpn: bool, pretrained: bool = False,
                   fpn_channels: int = 64, widths=(32, 64, 128)) -> Stages:
    if name == "lecture_cnn":
        stages, channels = _lecture_cnn_stages(in_channels, widths)
    elif name == "resnet18":
        stages, channels = _resnet18_stages(in_channels, pretrained)
    elif name == "efficientnet_lite0":
        stages, channels = _efficientnet_stages(in_channels, pretrained)
    else:
        raise CnnlabError(f"backbone {name!r}: expected one of {', '.join(BACKBONES)}")
    if pretrained and name == "lecture_cnn":
        raise CnnlabError(f"backbone {name!r} has no pretrained weights; efficientnet_lite0 and resnet18 have")
    return Stages(stages, channels, fpn, fpn_channels)


# ---------------------------------------------------------------------------------------
# The detector
# ---------------------------------------------------------------------------------------


class FasterRCNN(TorchvisionFasterRCNN):
    """torchvision's Faster R-CNN with the RPN's proposals on demand (``--show-proposals``)."""

    @torch.no_grad()
    def propose(self, images: list[Tensor], top: int = 10) -> list[Tensor]:
        """The RPN's ``top`` proposals per image, (top, 4) in the input image's pixels."""
        sizes = [img.shape[-2:] for img in images]
        batch, _ = self.transform(images)
        features = self.backbone(batch.tensors)
        if isinstance(features, Tensor):
            features = OrderedDict([("0", features)])
        proposals, _ = self.rpn(batch, features)  # sorted by objectness, in resized pixels
        out = []
        for boxes, (h, w), (rh, rw) in zip(proposals, sizes, batch.image_sizes):
            scale = torch.tensor([w / rw, h / rh, w / rw, h / rh], device=boxes.device)
            out.append(boxes[:top] * scale)
        return out

    def set_thresholds(self, score: float, nms_iou: float) -> None:
        """Keep detections scoring at least ``score``; suppress overlaps above ``nms_iou`` per class."""
        self.roi_heads.score_thresh, self.roi_heads.nms_thresh = score, nms_iou

    def thresholds(self) -> tuple[float, float]:
        """(score, nms_iou) now in force."""
        return self.roi_heads.score_thresh, self.roi_heads.nms_thresh


def _anchor_sizes(sizes, levels: int) -> tuple[tuple[int, ...], ...]:
    """The anchor sides of every feature level: one list for all, or a list per level."""
    if all(isinstance(s, (int, float)) for s in sizes):
        return (tuple(int(s) for s in sizes),) * levels
    if len(sizes) != levels or not all(isinstance(s, (list, tuple)) and s for s in sizes):
        raise CnnlabError(f"anchor_sizes: expected a list of sides in pixels, or one non-empty list per "
                          f"feature level ({levels} here), got {list(sizes)!r}")
    return tuple(tuple(int(v) for v in s) for s in sizes)


@register_model("fasterrcnn", input_size=(3, 64, 64), task="detect", paper="Ren et al. 2015 (Faster R-CNN)",
                tags=("detection", "rcnn"))
def fasterrcnn(num_classes: int = 7, in_channels: int = 3, pretrained: bool = False, *,
               backbone: str = "lecture_cnn",
               fpn: bool = False,                      # feature pyramid over the backbone's stages
               fpn_channels: int = 64,                 # channels of every pyramid level
               widths: tuple[int, ...] = (32, 64, 128),  # lecture_cnn backbone: channels per block
               anchor_sizes: tuple = (16, 32, 48),   # anchor sides, pixels of the resized image; with fpn
                                                     # a list per pyramid level (fine to coarse) is allowed
               aspect_ratios: tuple[float, ...] = (0.5, 1.0, 2.0),  # anchor height / width
               min_size: int = 800, max_size: int = 1333,  # resize: shorter side to min_size, longer <= max
               representation: int = 256,              # width of the box head's two FC layers
               sampling_ratio: int = 1,                # RoIAlign sample points per bin side (CPU cost ~ its square)
               image_mean: tuple[float, ...] | None = None, image_std: tuple[float, ...] | None = None,
               **kwargs) -> FasterRCNN:
    """Faster R-CNN over ``backbone``; ``num_classes`` counts the background. Other ``kwargs`` go to
    torchvision's ``FasterRCNN`` (e.g. ``rpn_post_nms_top_n_test``, ``box_batch_size_per_image``)."""
    body = build_backbone(backbone, in_channels, fpn, pretrained, fpn_channels, widths)
    names = [str(i) for i in range(len(body.stages))] if fpn else ["0"]
    anchors = AnchorGenerator(sizes=_anchor_sizes(anchor_sizes, body.levels),
                              aspect_ratios=(tuple(aspect_ratios),) * body.levels)
    roi_pool = SparseMultiScaleRoIAlign(featmap_names=names, output_size=7, sampling_ratio=sampling_ratio)
    box_head = TwoMLPHead(body.out_channels * 7 * 7, representation)
    if image_mean is None:
        pretrained_stats = backbone == "efficientnet_lite0" and pretrained
        image_mean = (127 / 255,) * 3 if pretrained_stats else IMAGENET_MEAN
        image_std = (128 / 255,) * 3 if pretrained_stats else IMAGENET_STD
        if in_channels != 3:
            image_mean, image_std = (0.5,) * in_channels, (0.25,) * in_channels
    # fewer proposals and sampled regions than torchvision's defaults: small images, few objects
    small = dict(rpn_pre_nms_top_n_train=256, rpn_post_nms_top_n_train=128, rpn_pre_nms_top_n_test=256,
                 rpn_post_nms_top_n_test=100, rpn_batch_size_per_image=64, box_batch_size_per_image=32)
    model = FasterRCNN(body, num_classes=None, min_size=min_size, max_size=max_size,
                       image_mean=list(image_mean), image_std=list(image_std),
                       rpn_anchor_generator=anchors, box_roi_pool=roi_pool, box_head=box_head,
                       box_predictor=FastRCNNPredictor(representation, num_classes), **{**small, **kwargs})
    model.num_classes, model.in_channels = num_classes, in_channels
    return model
