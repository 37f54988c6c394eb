"""Built-in datasets: digits, xo (the lecture's X or O) and shapes (scenes + classification)."""
import re

import numpy as np
import pytest
import torch

from cnnlab.data.builtin.digits import digits, split_indices
from cnnlab.data.builtin.shapes import (COLORS, PALETTE, PLURALS, SHAPES, generate_scene, generate_scenes,
                                relation, shapes)
from cnnlab.data.builtin.xo import XO_CLEAN, XO_FILTERS, XO_SHIFTED, xo
from cnnlab.data.registry import load_dataset
from cnnlab.errors import CnnlabError


def _rows(images: torch.Tensor) -> set[bytes]:
    return {img.numpy().tobytes() for img in images}


# ---------------------------------------------------------------------------------------
# digits
# ---------------------------------------------------------------------------------------


def test_digits_shapes_and_classes():
    sizes = {}
    for split in ("train", "val", "test"):
        d = digits(split)
        assert d.images.dtype == torch.uint8 and d.images.shape[1:] == (1, 8, 8)
        assert d.labels.dtype == torch.int64 and d.classes == [str(i) for i in range(10)]
        assert d.labels.bincount(minlength=10).min() >= 15  # stratified: every class everywhere
        sizes[split] = len(d)
    assert sizes == {"train": 1258, "val": 179, "test": 360}
    assert digits("train").images.max() == 255  # 16 -> 255


def test_digits_split_fixed_disjoint_and_complete():
    idx = split_indices()
    joined = torch.cat([idx["train"], idx["val"], idx["test"]])
    assert len(joined) == 1797 and len(set(joined.tolist())) == 1797
    assert torch.equal(digits("test", seed=0).images, digits("test", seed=123).images)
    assert torch.equal(digits("val").labels, load_dataset("digits", "val", seed=7).labels)


def test_digits_rejects_unknown_options():
    with pytest.raises(CnnlabError, match="'digits' \\(classify\\) takes no options, got image_size"):
        load_dataset("digits", "train", image_size=32)  # the registry checks built-in options once


# ---------------------------------------------------------------------------------------
# xo
# ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def xo_splits():
    return {split: xo(split, seed=0) for split in ("train", "val", "test")}


def test_xo_shapes_balance_and_ink(xo_splits):
    for split, n in {"train": 4000, "val": 500, "test": 1000}.items():
        d = xo_splits[split]
        assert d.images.shape == (n, 1, 28, 28) and d.images.dtype == torch.uint8
        assert d.classes == ["O", "X"]
        assert d.labels.bincount().tolist() == [n // 2, n // 2]
    images = xo_splits["val"].images.flatten(1).float()
    assert (images.amax(1) - images.median(1).values).min() > 80  # every image has a visible stroke


def test_xo_deterministic_and_splits_disjoint(xo_splits):
    again = xo("val", seed=0)
    assert torch.equal(again.images, xo_splits["val"].images)
    assert torch.equal(again.labels, xo_splits["val"].labels)
    assert not torch.equal(xo("val", seed=1).images, again.images)
    train, test = _rows(xo_splits["train"].images), _rows(xo_splits["test"].images)
    assert not train & test and not _rows(xo_splits["val"].images) & train


def test_xo_options():
    assert xo("val", image_size=36).images.shape == (500, 1, 36, 36)
    with pytest.raises(CnnlabError, match="takes only image_size, got colour"):
        load_dataset("xo", "val", colour=True)


def test_lecture_matrices():
    for m in (XO_CLEAN, XO_SHIFTED):
        assert m.shape == (9, 9) and set(np.unique(m)) == {-1.0, 1.0}
    assert not np.array_equal(XO_CLEAN, XO_SHIFTED)
    assert np.array_equal(XO_CLEAN, XO_CLEAN.T) and np.array_equal(XO_CLEAN, XO_CLEAN[:, ::-1])
    assert list(XO_FILTERS) == ["diagonal_down", "crossing", "diagonal_up"]
    for f in XO_FILTERS.values():
        assert f.shape == (3, 3) and set(np.unique(f)) == {-1.0, 1.0}
    # The lecture's point: each filter is an exact patch of the clean X.
    assert np.array_equal(XO_CLEAN[1:4, 1:4], XO_FILTERS["diagonal_down"])
    assert np.array_equal(XO_CLEAN[3:6, 3:6], XO_FILTERS["crossing"])
    assert np.array_equal(XO_CLEAN[1:4, 5:8], XO_FILTERS["diagonal_up"])
    with pytest.raises(ValueError):
        XO_CLEAN[0, 0] = 1  # shared constants are read-only


# ---------------------------------------------------------------------------------------
# shapes: one-object classification set
# ---------------------------------------------------------------------------------------


def test_shapes_classification():
    train, val = shapes("train"), shapes("val")
    assert train.images.shape == (5000, 3, 32, 32) and train.images.dtype == torch.uint8
    assert train.classes == SHAPES and len(SHAPES) >= 5 and len(COLORS) >= 6
    counts = train.labels.bincount(minlength=len(SHAPES))
    assert counts.max() - counts.min() <= 1
    assert len(val) == 500 and len(load_dataset("shapes", "test")) == 1000
    assert torch.equal(shapes("val", seed=0).images, val.images)
    assert not torch.equal(shapes("val", seed=1).images, val.images)
    assert not _rows(train.images) & _rows(val.images)


# ---------------------------------------------------------------------------------------
# shapes: annotated scenes
# ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def scenes():
    crowded = generate_scenes(60, seed=1, min_objects=5, max_objects=5, overlap=0.7)  # redraws
    return generate_scenes(300, seed=0, size=64, min_objects=1, max_objects=4) + crowded


def test_scenes_images_and_counts(scenes):
    assert {len(s.objects) for s in scenes} == {1, 2, 3, 4, 5}
    for s in scenes[:20]:
        assert s.image.shape == (3, 64, 64) and s.image.dtype == torch.uint8
        assert s.instance_masks.shape == (len(s.objects), 64, 64)
        assert s.boxes.shape == (len(s.objects), 4)
        assert s.image.float().std(dim=(1, 2)).min() > 1  # not flat


def test_scenes_deterministic():
    a, b = generate_scenes(20, seed=3), generate_scenes(20, seed=3)
    assert all(torch.equal(x.image, y.image) and x.captions == y.captions for x, y in zip(a, b))
    c = generate_scenes(20, seed=4)
    assert not all(torch.equal(x.image, y.image) for x, y in zip(a, c))
    one = generate_scene(np.random.default_rng(0), size=48, min_objects=2, max_objects=2)
    assert one.image.shape == (3, 48, 48) and len(one.objects) == 2


def test_boxes_tight_and_masks_disjoint(scenes):
    for s in scenes:
        assert (s.instance_masks.sum(0) <= 1).all()  # visible masks never overlap
        for obj in s.objects:
            x0, y0, x1, y1 = obj.box
            m = obj.mask
            assert m.any() and 0 <= x0 < x1 <= 64 and 0 <= y0 < y1 <= 64
            assert m[y0:y1, x0:x1].sum() == m.sum()  # contains
            assert m[y0].any() and m[y1 - 1].any()  # tight: every edge row and column has ink
            assert m[:, x0].any() and m[:, x1 - 1].any()


def test_semantic_mask_agrees(scenes):
    for s in scenes:
        sem = s.semantic_mask()
        assert sem.dtype == torch.int64 and (sem == 0).any()
        expected = torch.zeros(64, 64, dtype=torch.int64)
        for obj, label in zip(s.objects, s.labels.tolist()):
            assert label == 1 + SHAPES.index(obj.shape)
            expected[obj.mask] = label
        assert torch.equal(sem, expected)


def test_object_colours_and_sizes_are_rendered(scenes):
    palette = torch.tensor([PALETTE[c] for c in COLORS], dtype=torch.float32)
    areas = {"small": [], "large": []}
    for s in scenes:
        for obj in s.objects:
            mean = s.image[:, obj.mask].float().mean(1)  # (3,)
            assert COLORS[(palette - mean).norm(dim=1).argmin()] == obj.color
            if len(s.objects) == 1:
                areas[obj.size].append(obj.mask.sum().item())
    assert np.mean(areas["large"]) > 2.5 * np.mean(areas["small"])


SINGULAR = {**{s: s for s in SHAPES}, **{PLURALS.get(s, s + "s"): s for s in SHAPES}}
RELATION = re.compile(r"(a (?:small|large) \w+ \w+) (?:to the )?(left of|right of|above|below) "
                      r"(a (?:small|large) \w+ \w+)")


def test_captions_mention_what_is_there(scenes):
    for s in scenes:
        present = {"colour": {o.color for o in s.objects}, "shape": {o.shape for o in s.objects}}
        assert len(s.captions) >= 3
        listing = next(c for c in s.captions if re.match(r"\w+ shapes?: ", c))
        assert all(obj.phrase in listing for obj in s.objects)  # names every object
        for caption in s.captions:
            for w in re.findall(r"\w+", caption):
                if w in COLORS:
                    assert w in present["colour"], caption
                if w in SINGULAR:
                    assert SINGULAR[w] in present["shape"], caption


def test_relations_match_box_centres(scenes):
    checked = 0
    for s in scenes:
        by_phrase = {o.phrase: o for o in s.objects}
        for caption in s.captions:
            for a, rel, b in RELATION.findall(caption):
                (ax, ay), (bx, by) = by_phrase[a].center, by_phrase[b].center
                dx, dy = ax - bx, ay - by
                horizontal = abs(dx) >= abs(dy)
                ok = {"left of": dx < 0 and horizontal, "right of": dx > 0 and horizontal,
                      "above": dy < 0 and not horizontal, "below": dy > 0 and not horizontal}
                assert ok[rel], caption
                assert rel == relation(by_phrase[a], by_phrase[b])
                checked += 1
    assert checked > 200


def test_scene_argument_errors():
    with pytest.raises(CnnlabError):
        generate_scenes(2, seed=0, min_objects=3, max_objects=2)
    with pytest.raises(CnnlabError, match="cannot fit"):
        generate_scenes(1, seed=0, size=16, min_objects=9, max_objects=9, overlap=0.0)
