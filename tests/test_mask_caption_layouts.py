"""Masks and captions read as the user meant them, or refused in one line naming the file and the fix.

Binary 0/255 masks (gray, RGB, RGBA) are two classes, not "255 = ignore"; 255 is ignored only where
the layout says so (VOC, CamVid's void 11, an ``ignore N`` line); masks at another size but the same
aspect ratio are resized and counted; a CSV quote left open, images listed but absent and text
that is not UTF-8 are said, not silently lost."""
from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from cnnlab.data import load_dataset
from cnnlab.data.formats.captions import caption_layout
from cnnlab.data.formats.mask_folders import segmentation_layout
from cnnlab.data.formats.text import read_utf8
from cnnlab.data.masks import IGNORE
from cnnlab.errors import CnnlabError

H, W = 24, 32


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("CNNLAB_CACHE", str(tmp_path / "cache"))


def _image(path: Path, h: int = H, w: int = W) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(len(path.name))
    Image.fromarray(rng.integers(0, 255, (h, w, 3), dtype=np.uint8)).save(path)


def _binary(i: int, h: int = H, w: int = W) -> np.ndarray:
    """A white-on-black mask: a block of foreground (255) whose width depends on ``i``."""
    m = np.zeros((h, w), np.uint8)
    m[h // 4:, : w // 4 + 2 * i] = 255
    return m


def _save_mask(mask: np.ndarray, path: Path, mode: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    img = Image.fromarray(mask)
    if mode == "RGBA":  # white on black, opaque, as an editor exports it
        img = img.convert("RGBA")
    elif mode == "RGBA-transparent":  # white on transparent black
        rgba = np.zeros(mask.shape + (4,), np.uint8)
        rgba[mask > 0] = 255
        img = Image.fromarray(rgba, "RGBA")
    elif mode != "L":
        img = img.convert(mode)
    img.save(path)


def _folders(root: Path, masks: list[np.ndarray], classes: str = "background\nroad\n", mode: str = "L",
             image_hw: tuple[int, int] = (H, W)) -> Path:
    for i, m in enumerate(masks):
        _image(root / "images" / f"im{i}.png", *image_hw)
        _save_mask(m, root / "masks" / f"im{i}.png", mode)
    (root / "classes.txt").write_text(classes)
    return root


def _load(root, split="train", **opts):
    opts = {"val_fraction": 0.0, "test_fraction": 0.0, **opts}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        data = load_dataset(root, split, task="segment", **opts)
    return data, [str(w.message) for w in caught]


# ---------------------------------------------------------------------- binary masks
@pytest.mark.parametrize("mode", ["L", "RGB", "RGBA", "RGBA-transparent"])
def test_binary_0_255_masks_are_two_classes_not_ignore(tmp_path, mode):
    masks = [_binary(i) for i in range(4)]
    root = _folders(tmp_path / "roads", masks, mode=mode)
    data, _ = _load(root)
    foreground = sum(int((m == 255).sum()) for m in masks)
    counts = data.describe()["class_counts"]
    assert counts == {"background": 4 * H * W - foreground, "road": foreground}  # today: road 0, half dropped
    assert int((data.masks == IGNORE).sum()) == 0
    assert any("4 binary masks with only 0 and 255: 255 read as class 1 (road)" in line for line in data.report)
    assert data.describe()["report"] == data.report


def test_binary_0_1_masks_read_as_they_are(tmp_path):
    masks = [_binary(i) // 255 for i in range(3)]
    data, _ = _load(_folders(tmp_path / "roads", masks))
    assert data.describe()["class_counts"]["road"] == sum(int(m.sum()) for m in masks)
    assert not data.report


def test_255_outside_the_classes_is_refused_until_classes_txt_says_ignore(tmp_path):
    masks = [np.where(_binary(i) > 0, 255, i % 3).astype(np.uint8) for i in range(3)]  # ids 0..2 and 255
    root = _folders(tmp_path / "roads", masks, classes="road\ncar\nsky\n")
    with pytest.raises(CnnlabError, match=r"masks.im0\.png has class ids \[255\] outside 0..2 \(3 classes, no "
                                          r"ignore value\); if 255 marks pixels to leave out, add the line "
                                          r"'ignore 255' to .*classes.txt") as e:
        _load(root)
    assert "\n" not in str(e.value)
    (root / "classes.txt").write_text("road\ncar\nsky\nignore 255\n")
    data, _ = _load(root)
    ignored = sum(int((m == 255).sum()) for m in masks)
    assert int((data.masks == IGNORE).sum()) == ignored and data.describe()["ignored_share"] > 0
    assert any(f"{ignored:,} pixels" in line and "hold 255" in line for line in data.report)
    (root / "classes.txt").write_text("road\ncar\nsky\n")  # the cache does not keep the old rule
    with pytest.raises(CnnlabError, match=r"class ids \[255\]"):
        _load(root)


def test_an_rgb_mask_colour_of_no_class_is_named_until_classes_txt_says_ignore(tmp_path):
    masks = []
    for i in range(3):
        m = np.zeros((H, W, 3), np.uint8)
        m[_binary(i) > 0] = (128, 64, 128)
        m[:2, :3] = (250, 0, 0)  # 6 pixels of a colour no class has
        masks.append(m)
    root = _folders(tmp_path / "roads", masks, classes="background 0 0 0\nroad 128 64 128\n", mode="RGB")
    with pytest.raises(CnnlabError, match=r"masks.im0\.png holds colours that are no class's colour in the classes "
                                          r"file: \(250, 0, 0\) \(6 pixels\); give each its class"):
        _load(root)
    (root / "classes.txt").write_text("background 0 0 0\nroad 128 64 128\nignore 255\n")
    data, _ = _load(root)
    assert int((data.masks == IGNORE).sum()) == 6 * len(data)
    assert int((data.masks == 1).sum()) == sum(int((_binary(i) > 0).sum()) for i in range(3))


def test_a_two_class_mask_with_a_third_value_is_refused(tmp_path):
    masks = [_binary(0), np.where(_binary(1) > 0, 255, 1).astype(np.uint8)]  # 0/255, then 1/255
    masks[1][0, 0] = 0
    with pytest.raises(CnnlabError, match=r"im1\.png has class ids \[255\] outside 0..1 \(2 classes"):
        _load(_folders(tmp_path / "roads", masks))


def test_ignore_line_must_not_name_a_class(tmp_path):
    root = _folders(tmp_path / "roads", [_binary(0)], classes="background\nroad\nignore 1\n")
    with pytest.raises(CnnlabError, match=r"classes.txt: 'ignore 1' is the id of class 'road'"):
        _load(root)


# ---------------------------------------------------------------------- mask sizes
def test_masks_at_half_size_same_aspect_are_resized_and_counted(tmp_path):
    small = [_binary(i, H // 2, W // 2) for i in range(3)]
    root = _folders(tmp_path / "roads", small)
    for i in range(3):  # the images stay at full size
        _image(root / "images" / f"im{i}.png")
    data, caught = _load(root)
    assert data.masks.shape == (3, H, W)
    # nearest neighbour: each mask pixel becomes a 2x2 block
    assert data.describe()["class_counts"]["road"] == 4 * sum(int((m == 255).sum()) for m in small)
    resized = [line for line in data.report if "3 masks at another size than its image" in line]
    assert len(resized) == 1 and "im0.png 16x12 -> 32x24" in resized[0]
    assert sum("resized nearest-neighbour" in w for w in caught) == 1
    again, caught = _load(root)  # from the cache: the same report, said again
    assert again.report == data.report and sum("resized nearest-neighbour" in w for w in caught) == 1


def test_a_mask_of_another_aspect_ratio_is_refused_with_both_sizes(tmp_path):
    root = _folders(tmp_path / "roads", [_binary(0), _binary(1, 16, 16)])
    with pytest.raises(CnnlabError, match=r"mask \S*im1\.png is 16x16 but image im1\.png is 32x24 \(W x H\), "
                                          r"another aspect ratio"):
        _load(root)
    data, _ = _load(root, skip_bad=True)  # left out, and said
    assert len(data) == 1 and any("left out 1 of 2 pairs (skip_bad)" in line and "im1.png" in line
                                  for line in data.report)


# ---------------------------------------------------------------------- VOC and CamVid keep their rules
def _voc(root: Path, bad_value: int | None = None) -> Path:
    for i, stem in enumerate(["2007_000001", "2007_000002"]):
        _image(root / "JPEGImages" / f"{stem}.jpg")
        ids = np.zeros((H, W), np.uint8)
        ids[4:12, 4:12] = 15  # person
        ids[3, 3:13] = 255  # the object's border: ignore
        if bad_value is not None and i == 1:
            ids[20, 20] = bad_value
        p = Image.fromarray(ids, "P")
        p.putpalette([v for c in range(256) for v in (c, c, c)])
        (root / "SegmentationClass").mkdir(parents=True, exist_ok=True)
        p.save(root / "SegmentationClass" / f"{stem}.png")
    (root / "ImageSets" / "Segmentation").mkdir(parents=True, exist_ok=True)
    (root / "ImageSets" / "Segmentation" / "train.txt").write_text("2007_000001\n")
    (root / "ImageSets" / "Segmentation" / "val.txt").write_text("2007_000002\n")
    return root


def test_voc_segmentation_keeps_255_as_ignore(tmp_path):
    root = _voc(tmp_path / "VOC2012")
    data, _ = _load(root)
    assert data.describe()["class_counts"]["person"] == 64 and int((data.masks == IGNORE).sum()) == 10
    assert any("10 pixels" in line and "VOC's borders" in line for line in data.report)
    assert segmentation_layout(root) == "Pascal VOC segmentation (SegmentationClass/)"
    with pytest.raises(CnnlabError, match=r"2007_000002\.png has class ids \[30\] outside 0..20 .*VOC masks hold"):
        _load(_voc(tmp_path / "bad", bad_value=30), "val")


def _camvid(root: Path, values=range(12)) -> Path:
    for split in ("train", "val"):
        for i in range(2):
            _image(root / split / f"f{i}.png")
            ids = np.array(list(values), np.uint8)[np.arange(H * W) % len(values)].reshape(H, W)
            (root / f"{split}annot").mkdir(exist_ok=True)
            Image.fromarray(ids).save(root / f"{split}annot" / f"f{i}.png")
    return root


def test_camvid_layout_unchanged_void_11_ignored(tmp_path):
    root = _camvid(tmp_path / "camvid")
    data, _ = _load(root, "val")
    counts = data.describe()["class_counts"]
    per_id = 2 * H * W // 12  # two masks cycling through ids 0..11
    assert len(counts) == 11 and counts["Sky"] == per_id and int((data.masks == IGNORE).sum()) == per_id
    assert segmentation_layout(root) == "CamVid/SegNet (train/ + trainannot/)"
    with pytest.raises(CnnlabError, match=r"class ids \[255\] outside 0..10 \(11 classes, 11 = ignore: CamVid's void"):
        _load(_camvid(tmp_path / "bad", values=[0, 3, 255]), "val")


# ---------------------------------------------------------------------- text files that are not UTF-8
def test_non_utf8_segmentation_lists_name_the_file_and_byte(tmp_path):
    root = _folders(tmp_path / "roads", [_binary(0)])
    (root / "classes.txt").write_bytes(b"background\nroute caf\xe9\n")
    with pytest.raises(CnnlabError, match=r"classes.txt: not UTF-8 text \(byte 0xe9 at offset 20\); save it as UTF-8"):
        _load(root)
    camvid = tmp_path / "segnet"
    _image(camvid / "train" / "a.png")
    (camvid / "trainannot").mkdir()
    Image.fromarray(np.zeros((H, W), np.uint8)).save(camvid / "trainannot" / "a.png")
    (camvid / "train").rename(camvid / "images_train")
    (camvid / "train.txt").write_bytes(b"/SegNet/CamVid/train/a.png /SegNet/CamVid/trainannot/caf\xe9.png\n")
    with pytest.raises(CnnlabError, match=r"train.txt: not UTF-8 text \(byte 0xe9"):
        _load(camvid)
    voc = _voc(tmp_path / "VOC2012")
    (voc / "ImageSets" / "Segmentation" / "train.txt").write_bytes(b"\xff\xfe2\x000\x00")  # UTF-16
    with pytest.raises(CnnlabError, match=r"Segmentation.train.txt: not UTF-8 text \(byte 0xff at offset 0\)"):
        _load(voc)


def test_read_utf8_tolerates_a_bom(tmp_path):
    (tmp_path / "a.txt").write_bytes(b"\xef\xbb\xbfroad\n")
    assert read_utf8(tmp_path / "a.txt") == "road\n"
    (tmp_path / "a.txt").write_bytes(b"\xef\xbb\xbfro\xe9d\n")
    with pytest.raises(CnnlabError, match=r"byte 0xe9 at offset 5"):
        read_utf8(tmp_path / "a.txt")


def test_segmentation_layout_is_none_for_other_folders(tmp_path):
    (tmp_path / "cls" / "cat").mkdir(parents=True)
    _image(tmp_path / "cls" / "cat" / "a.png")
    (tmp_path / "yolo").mkdir()
    (tmp_path / "yolo" / "train.txt").write_bytes(b"images/a.jpg\nimages/b.jpg\n\xff")
    for path in (tmp_path / "cls", tmp_path / "yolo", tmp_path / "nowhere", tmp_path / "cls" / "cat" / "a.png"):
        assert segmentation_layout(path) is None
    assert segmentation_layout(_folders(tmp_path / "roads", [_binary(0)])) == "images/ + masks/ (+ classes.txt)"


# ---------------------------------------------------------------------- captions
NAMES = [f"{100 + i}_x.jpg" for i in range(8)]


def _captions_csv(root: Path, body: bytes | str) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    for i, name in enumerate(NAMES):
        _image(root / "Images" / name, 20 + i, 20)
    (root / "captions.txt").write_bytes(body if isinstance(body, bytes) else body.encode())
    return root


def _rows(captions: dict[int, str] | None = None) -> str:
    captions = captions or {}
    return "image,caption\n" + "".join(f"{n},{captions.get(i, f'a dog runs number {i}')}\n"
                                        for i, n in enumerate(NAMES))


def _load_captions(root, split="train", **opts):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        data = load_dataset(root, split, task="caption", **opts)
    return data, [str(w.message) for w in caught]


def test_a_csv_quote_left_open_is_an_error_with_its_line(tmp_path):
    root = _captions_csv(tmp_path / "f8k", _rows({2: '"a dog runs'}))  # today: 3 images, exit 0
    with pytest.raises(CnnlabError, match=r"captions.txt: line 4: a quote opened here is never closed"):
        _load_captions(root, val_fraction=0.0)
    root = _captions_csv(tmp_path / "f8k2", _rows({2: '"a dog runs', 5: 'a "big" dog'}))  # closed later
    with pytest.raises(CnnlabError, match=r"captions.txt: line 4: malformed CSV"):
        _load_captions(root, val_fraction=0.0)
    root = _captions_csv(tmp_path / "f8k3", _rows({2: '"a dog\nruns"'}))  # valid CSV, but one row per line
    with pytest.raises(CnnlabError, match=r"captions.txt: line 4: a quoted field runs on to line 5"):
        _load_captions(root, val_fraction=0.0)
    ok, _ = _load_captions(_captions_csv(tmp_path / "f8k4", _rows({2: '"a dog, ""Rex"", runs"'})), val_fraction=0.0)
    assert len(ok) == 8 and "rex" in ok.classes


def test_a_caption_over_the_csv_field_limit_names_the_file_and_line(tmp_path):
    root = _captions_csv(tmp_path / "f8k", _rows({6: "dog " * 40_000}))
    with pytest.raises(CnnlabError, match=r"captions.txt: line 8: a field longer than the csv module's limit") as e:
        _load_captions(root)
    assert "\n" not in str(e.value)


def _coco(root: Path, present: int, listed: int = 12, uncaptioned: int = 0) -> Path:
    images = [{"id": i, "file_name": f"{i:012d}.jpg"} for i in range(listed)]
    anns = [{"image_id": i, "caption": f"a cat on mat {i}"} for i in range(listed - uncaptioned)]
    (root / "annotations").mkdir(parents=True)
    (root / "annotations" / "captions_val2017.json").write_text(json.dumps({"images": images, "annotations": anns}))
    for i in range(present):
        _image(root / "photos" / f"{i:012d}.jpg")
    (root / "photos").mkdir(exist_ok=True)
    return root


def test_coco_images_listed_but_absent_are_counted_and_said(tmp_path):
    root = _coco(tmp_path / "coco", present=5)
    with pytest.raises(CnnlabError, match=r"missing image \S*000000000005.jpg \(7 of the 12 images listed for val "
                                          r"missing; --skip-bad leaves them out; are they in --images"):
        _load_captions(root / "annotations", "val", images=root / "photos")
    data, caught = _load_captions(root / "annotations", "val", images=root / "photos", skip_bad=True)
    line = "7 of the 12 images listed for val are not on disk, left out (--skip-bad): 000000000005.jpg"
    assert len(data) == 5 and len(data.skipped) == 7
    assert any(line in r for r in data.report) and any(line in w for w in caught)  # today: not a word
    assert data.describe()["report"] == data.report
    (tmp_path / "empty").mkdir()
    for skip_bad in (False, True):
        with pytest.raises(CnnlabError, match=r"the val split has no images: .*all 12 missing"):
            _load_captions(root / "annotations", "val", images=tmp_path / "empty", skip_bad=skip_bad)


def test_coco_images_without_captions_are_counted(tmp_path):
    root = _coco(tmp_path / "coco", present=12, uncaptioned=3)
    data, _ = _load_captions(root / "annotations", "val", images=root / "photos")
    assert len(data) == 9
    assert any("3 listed images have no caption, left out: 000000000009.jpg" in line for line in data.report)


def test_captioned_images_in_no_split_list_are_counted(tmp_path):
    root = _captions_csv(tmp_path / "f8k", _rows())
    (root / "Flickr_8k.trainImages.txt").write_text("\n".join(NAMES[:5]) + "\n")
    (root / "Flickr_8k.devImages.txt").write_text(NAMES[5] + "\n")
    data, _ = _load_captions(root)
    assert len(data) == 5
    assert any("2 captioned images are in no split list" in line and NAMES[6] in line for line in data.report)


@pytest.mark.parametrize("name, body", [
    ("captions.txt", b"image,caption\n100_x.jpg,a caf\xe9 dog\n"),
    ("Flickr8k.token.txt", b"100_x.jpg#0\ta caf\xe9 dog\n"),
    ("captions_train.json", b'{"images": [{"id": 1, "file_name": "caf\xe9.jpg"}], "annotations": []}'),
])
def test_non_utf8_caption_files_name_the_file_and_byte(tmp_path, name, body):
    (tmp_path / name).write_bytes(body)
    with pytest.raises(CnnlabError, match=rf"{name}: not UTF-8 text \(byte 0xe9 at offset \d+\); save it as UTF-8"):
        _load_captions(tmp_path)


def test_a_non_utf8_split_list_names_the_file(tmp_path):
    root = _captions_csv(tmp_path / "f8k", _rows())
    (root / "Flickr_8k.trainImages.txt").write_bytes(b"100_x.jpg\n\xe9\n")
    with pytest.raises(CnnlabError, match=r"Flickr_8k.trainImages.txt: not UTF-8 text \(byte 0xe9 at offset 10\)"):
        _load_captions(root)


def test_caption_layout_names_the_layout_or_none(tmp_path):
    assert caption_layout(_captions_csv(tmp_path / "f8k", _rows())) == "captions.txt (Flickr8k CSV)"
    coco = _coco(tmp_path / "coco", present=1)
    assert caption_layout(coco) == caption_layout(coco / "annotations") == "COCO captions JSON"
    (tmp_path / "k").mkdir()
    (tmp_path / "k" / "dataset_flickr8k.json").write_text("{}")
    (tmp_path / "t").mkdir()
    (tmp_path / "t" / "Flickr8k.token.txt").write_text("a.jpg#0\ta dog\n")
    (tmp_path / "odd.json").write_text(json.dumps({"images": [{"filename": "a.jpg", "sentences": []}]}))
    assert caption_layout(tmp_path / "k") == "Karpathy JSON"
    assert caption_layout(tmp_path / "t") == "Flickr8k.token.txt"
    assert caption_layout(tmp_path / "odd.json") == "Karpathy JSON"
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "captions.txt").write_bytes(b"\xff\xfe not a csv")
    (tmp_path / "instances.json").write_text(json.dumps({"images": [], "annotations": [{"bbox": [0, 0, 1, 1]}]}))
    (tmp_path / "broken.json").write_text("{")
    for path in (tmp_path / "other", tmp_path / "instances.json", tmp_path / "broken.json", tmp_path / "nowhere",
                 _camvid(tmp_path / "camvid")):
        assert caption_layout(path) is None
