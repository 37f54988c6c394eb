"""Real dataset formats: IDX, CIFAR pickles, image-folder trees, named sets, describe / grid."""
import gzip
import os
import pickle
import struct
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from cnnlab.data import FileImages, TensorImages, load_dataset
from cnnlab.data.formats import class_folders as folder_mod
from cnnlab.data.formats.classification import load_path
from cnnlab.data.formats.idx import read_idx
from cnnlab.data.formats.named_sets import FASHION_CLASSES
from cnnlab.data.info import describe, save_sample_grid
from cnnlab.data.loader import Batches
from cnnlab.errors import CnnlabError

CIFAR10_DIR = Path(__file__).parents[1] / ".." / "shared" / "data" / "cifar10"
FASHION_DIR = Path("/usr/share/datasets/fashion-mnist")


@pytest.fixture(autouse=True)
def private_dirs(tmp_path, tmp_path_factory, monkeypatch):
    """Every test gets its own cache and data folder, outside tmp_path (where the tests build
    class-folder trees: a cache folder inside one would be an empty class, and is refused)."""
    monkeypatch.setenv("CNNLAB_CACHE", str(tmp_path_factory.mktemp("cache")))
    monkeypatch.setenv("CNNLAB_DATA", str(tmp_path_factory.mktemp("data")))


def ids(data: TensorImages) -> set[int]:
    """Each test image carries its id in pixel (0, 0, 0)."""
    return set(data.images[:, 0, 0, 0].tolist())


# ---------------------------------------------------------------------------------------------
# IDX
# ---------------------------------------------------------------------------------------------

def write_idx(path: Path, a: np.ndarray, gz: bool) -> None:
    raw = struct.pack(">BBBB", 0, 0, 0x08, a.ndim) + struct.pack(f">{a.ndim}I", *a.shape) + a.tobytes()
    path.write_bytes(gzip.compress(raw) if gz else raw)


def make_idx(folder: Path, gz: bool, n_train: int = 40, n_test: int = 20) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for prefix, n, start in (("train", n_train, 0), ("t10k", n_test, 100)):
        images = np.zeros((n, 28, 28), np.uint8)
        images[:, 0, 0] = np.arange(start, start + n)  # id
        ext = ".gz" if gz else ""
        write_idx(folder / f"{prefix}-images-idx3-ubyte{ext}", images, gz)
        write_idx(folder / f"{prefix}-labels-idx1-ubyte{ext}", (np.arange(n) % 4).astype(np.uint8), gz)


@pytest.mark.parametrize("gz", [True, False])
def test_idx_splits(tmp_path, gz):
    make_idx(tmp_path / "m", gz)
    train = load_path(tmp_path / "m", "train", val_fraction=0.25)
    val = load_path(tmp_path / "m", "val", val_fraction=0.25)
    test = load_path(tmp_path / "m", "test")
    assert (len(train), len(val), len(test)) == (30, 10, 20)
    assert train.image_shape == (1, 28, 28) and train.images.dtype == torch.uint8
    assert ids(train) | ids(val) == set(range(40)) and not ids(train) & ids(val)
    assert sorted(torch.bincount(val.labels).tolist()) == [2, 2, 3, 3]  # stratified, total 10
    assert ids(test) == set(range(100, 120)) and train.classes == ["0", "1", "2", "3"]
    assert train.name == "m/train" and test.name == "m/test"
    assert ids(load_path(tmp_path / "m", "val", val_fraction=0.25, seed=0)) == ids(val)
    assert ids(load_path(tmp_path / "m", "val", val_fraction=0.25, seed=1)) != ids(val)


def test_idx_options_and_torchvision_layout(tmp_path):
    make_idx(tmp_path / "d" / "MNIST" / "raw", gz=False)
    test = load_path(tmp_path / "d", "test", channels=3, image_size=32, classes=list("abcd"))
    assert test.image_shape == (3, 32, 32) and test.classes == list("abcd")


def test_idx_bad_magic_and_truncated(tmp_path):
    make_idx(tmp_path / "m", gz=False)
    bad = tmp_path / "m" / "train-images-idx3-ubyte"
    bad.write_bytes(b"\x12\x34\x56\x78" + b"\0" * 100)
    with pytest.raises(CnnlabError, match=r"train-images-idx3-ubyte: not an IDX file \(magic number 12345678"):
        load_path(tmp_path / "m", "train")
    write_idx(bad, np.zeros((3, 28, 28), np.uint8), gz=False)
    bad.write_bytes(bad.read_bytes()[:-10])
    with pytest.raises(CnnlabError, match="truncated"):
        read_idx(bad)


def idx_header(code: int, shape) -> bytes:
    return struct.pack(">BBBB", 0, 0, code, len(shape)) + struct.pack(f">{len(shape)}I", *shape)


@pytest.mark.parametrize("shape,data,expect", [
    ((2**32 - 1,) * 3, b"", "over the limit"),                 # product overflows int64
    ((2**32 - 1, 28, 28), b"\0" * 100, "over the limit"),
    ((0, 28, 28), b"", r"shape \(0, 28, 28\); expected every size to be at least 1"),
    ((5, 0, 28), b"", "at least 1"),
    ((1000, 28, 28), b"\0" * 100, "truncated"),                # claims more than the file holds
    ((2, 2), b"\0" * 5, "truncated"),                          # one byte too many
], ids=["overflow", "huge", "zero-count", "zero-height", "oversized", "one-too-many"])
@pytest.mark.parametrize("gz", [False, True])
def test_idx_hostile_headers(tmp_path, shape, data, expect, gz):
    path = tmp_path / "x-idx3-ubyte"
    raw = idx_header(0x08, shape) + data
    path.write_bytes(gzip.compress(raw) if gz else raw)
    with pytest.raises(CnnlabError, match=f"x-idx3-ubyte.*{expect}"):
        read_idx(path)


def test_idx_gzip_claim_checked_before_decompressing(tmp_path):
    path = tmp_path / "x-idx3-ubyte.gz"
    path.write_bytes(gzip.compress(idx_header(0x08, (60_000, 200, 200)) + b"\0" * 1000))  # 2.4 GB
    with pytest.raises(CnnlabError, match="a gzip file of [0-9,]+ bytes cannot hold that much"):
        read_idx(path)


def test_idx_gzip_bomb_is_decompressed_only_as_far_as_the_header_says(tmp_path):
    path = tmp_path / "x-idx3-ubyte.gz"
    path.write_bytes(gzip.compress(idx_header(0x08, (3, 28, 28)) + bytes(64 << 20), 1))  # 64 MiB
    tracemalloc.start()
    try:
        with pytest.raises(CnnlabError, match=r"holds more; truncated or corrupt"):
            read_idx(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 8 << 20


def test_idx_broken_gzip_and_missing_file(tmp_path):
    path = tmp_path / "x-idx3-ubyte.gz"
    path.write_bytes(gzip.compress(idx_header(0x08, (3, 28, 28)) + bytes(3 * 784))[:-30])
    with pytest.raises(CnnlabError, match="x-idx3-ubyte.gz: cannot read"):
        read_idx(path)
    with pytest.raises(CnnlabError, match="nothing: no such file"):
        read_idx(tmp_path / "nothing")


@pytest.mark.parametrize("code,labels,classes,expect", [
    (0x09, [0, 1, -1], None, "label -1 is negative"),
    (0x08, [0, 1, 3], list("abc"), "label 3 but only 3 classes"),
    (0x0C, [0, 2_000_000_000], None, "label 2000000000 but only 65,536 classes"),
    (0x0D, [0, 1, 2], None, "integer"),
], ids=["negative", "beyond-classes", "huge-unnamed", "float"])
def test_idx_bad_labels(tmp_path, code, labels, classes, expect):
    make_idx(tmp_path / "m", gz=False, n_train=len(labels))
    dtype = {0x08: ">u1", 0x09: ">i1", 0x0C: ">i4", 0x0D: ">f4"}[code]
    raw = idx_header(code, (len(labels),)) + np.array(labels, dtype).tobytes()
    (tmp_path / "m" / "train-labels-idx1-ubyte").write_bytes(raw)
    with pytest.raises(CnnlabError, match=expect):
        load_path(tmp_path / "m", "train", classes=classes)


# ---------------------------------------------------------------------------------------------
# CIFAR pickles
# ---------------------------------------------------------------------------------------------

def cifar_rows(n: int, start: int) -> np.ndarray:
    data = np.zeros((n, 3072), np.uint8)  # rows: 1024 R, 1024 G, 1024 B
    data[:, 0] = np.arange(start, start + n)          # R plane, pixel (0, 0): id
    data[:, 1024 + 2 * 32 + 5] = 77                   # G plane, row 2, column 5
    return data


def dump(path: Path, obj) -> None:
    with open(path, "wb") as f:
        pickle.dump(obj, f, protocol=2)


def make_cifar10(folder: Path) -> None:
    folder.mkdir(parents=True)
    for i in range(1, 6):
        dump(folder / f"data_batch_{i}", {"data": cifar_rows(10, 10 * (i - 1)), "labels": list(np.arange(10) % 10)})
    dump(folder / "test_batch", {"data": cifar_rows(10, 200), "labels": list(range(10))})
    dump(folder / "batches.meta", {"label_names": [f"c{i}" for i in range(10)]})


def test_cifar10_pickles(tmp_path):
    make_cifar10(tmp_path / "cifar-10-batches-py")
    train = load_path(tmp_path, "train", val_fraction=0.2)
    test = load_path(tmp_path / "cifar-10-batches-py", "test")
    assert len(train) == 40 and len(test) == 10 and test.image_shape == (3, 32, 32)
    assert test.classes == [f"c{i}" for i in range(10)] and test.labels.tolist() == list(range(10))
    assert test.images[0, 0, 0, 0] == 200 and (test.images[:, 1, 2, 5] == 77).all()
    assert len(ids(train) | ids(load_path(tmp_path, "val", val_fraction=0.2))) == 50


def test_cifar100_fine_labels(tmp_path):
    folder = tmp_path / "cifar-100-python"
    folder.mkdir()
    dump(folder / "train", {"data": cifar_rows(6, 0), "fine_labels": [0, 1, 2, 0, 1, 2], "coarse_labels": [0] * 6})
    dump(folder / "test", {"data": cifar_rows(3, 50), "fine_labels": [2, 1, 0], "coarse_labels": [0] * 3})
    dump(folder / "meta", {"fine_label_names": ["apple", "bee", "cup"], "coarse_label_names": ["x"]})
    test = load_path(tmp_path, "test")
    assert test.classes == ["apple", "bee", "cup"] and test.labels.tolist() == [2, 1, 0]
    assert len(load_path(tmp_path, "train", val_fraction=0)) == 6


class Evil:
    def __init__(self, target):
        self.target = target

    def __reduce__(self):
        return os.mkdir, (self.target,)


def test_cifar_pickle_cannot_run_code(tmp_path):
    make_cifar10(tmp_path / "c")
    dump(tmp_path / "c" / "test_batch", {"data": Evil(str(tmp_path / "pwned")), "labels": [0]})
    with pytest.raises(CnnlabError, match="test_batch: not a CIFAR python pickle.*refusing"):
        load_path(tmp_path / "c", "test")
    assert not (tmp_path / "pwned").exists()


def _no_names(folder):
    dump(folder / "batches.meta", {"num_cases_per_batch": 10})


def _labels(labels):
    return lambda folder: dump(folder / "test_batch", {"data": cifar_rows(10, 0), "labels": labels})


def _data(data):
    return lambda folder: dump(folder / "test_batch", {"data": data, "labels": list(range(10))})


@pytest.mark.parametrize("spoil,expect", [
    (_no_names, r"batches.meta: expected 'label_names', a list of class names; got keys \['num_cases"),
    (_labels(["cat"] * 10), "'labels' must be a list of integer class indices"),
    (_labels([str(i) for i in range(10)]), "integer class indices"),
    (_labels([0.5] * 10), "integer class indices"),
    (_labels([2**70] * 10), "integer class indices"),
    (_labels([-1] * 10), "label -1 is negative"),
    (_labels(list(range(9))), "10 images but 9 labels"),
    (_labels(list(range(1, 11))), "label 10 but batches.meta names 10 classes"),
    (_data(np.zeros((10, 3000), np.uint8)), r"\(N, 3072\) uint8, got uint8 \(10, 3000\)"),
    (_data(np.zeros((10, 3072), np.float32)), r"got float32"),
    (_data(np.zeros(3072, np.uint8)), r"got uint8 \(3072,\)"),
    (_data([[0] * 3072] * 10), "got list"),
], ids=["no-names", "str-labels", "digit-strings", "float", "huge", "negative", "count",
        "beyond-classes", "row-length", "float-data", "1-d", "list-data"])
def test_cifar_malformed_batches(tmp_path, spoil, expect):
    make_cifar10(tmp_path / "c")
    spoil(tmp_path / "c")
    with pytest.raises(CnnlabError, match=expect):
        load_path(tmp_path / "c", "test")


# ---------------------------------------------------------------------------------------------
# image-folder trees
# ---------------------------------------------------------------------------------------------

def make_tree(root: Path, counts: dict[str, int], start: int = 0, size=(8, 8), ext="png") -> int:
    """PNGs whose pixel (0, 0) red value is a unique id; returns the next free id."""
    for name, n in counts.items():
        (root / name).mkdir(parents=True, exist_ok=True)
        for _ in range(n):
            a = np.zeros((*size, 3), np.uint8)
            a[0, 0, 0] = start
            Image.fromarray(a).save(root / name / f"{start:03d}.{ext}")
            start += 1
    return start


def test_tree_with_train_and_test(tmp_path):
    nxt = make_tree(tmp_path / "train", {"cat": 6, "dog": 6})
    make_tree(tmp_path / "test", {"cat": 2, "dog": 2}, start=nxt)
    train = load_path(tmp_path, "train", val_fraction=0.5)
    val = load_path(tmp_path, "val", val_fraction=0.5)
    test = load_path(tmp_path, "test")
    assert isinstance(train, TensorImages) and train.classes == ["cat", "dog"]
    assert (len(train), len(val), len(test)) == (6, 6, 4)
    assert torch.bincount(val.labels).tolist() == [3, 3]  # stratified
    assert ids(train) | ids(val) == set(range(12)) and ids(test) == set(range(12, 16))
    assert train.image_shape == (3, 8, 8) and test.name == f"{tmp_path.name}/test"


def test_tree_without_test_says_so(tmp_path):
    make_tree(tmp_path / "train", {"a": 2})
    make_tree(tmp_path / "val", {"a": 2}, start=10)
    assert ids(load_path(tmp_path, "val")) == {10, 11} and len(load_path(tmp_path, "train")) == 2
    with pytest.raises(CnnlabError, match="no test/ folder"):
        load_path(tmp_path, "test")


def test_one_tree_split_by_ratio(tmp_path):
    make_tree(tmp_path, {"a": 10, "b": 10, "c": 10})
    parts = {s: load_path(tmp_path, s, seed=3) for s in ("train", "val", "test")}
    assert [len(parts[s]) for s in ("train", "val", "test")] == [21, 3, 6]
    assert torch.bincount(parts["test"].labels).tolist() == [2, 2, 2]
    assert set().union(*map(ids, parts.values())) == set(range(30))
    assert ids(load_path(tmp_path, "test", seed=3)) == ids(parts["test"])
    assert ids(load_path(tmp_path, "test", seed=4)) != ids(parts["test"])


def test_bad_file_raises_or_is_skipped(tmp_path):
    make_tree(tmp_path / "train", {"cat": 3, "dog": 3})
    make_tree(tmp_path / "test", {"cat": 1}, start=50)
    (tmp_path / "train" / "dog" / "broken.jpg").write_text("not a jpeg at all")
    (tmp_path / "train" / "cat" / "empty.png").write_bytes(b"")
    with pytest.raises(CnnlabError, match=r"(broken\.jpg|empty\.png).*--skip-bad"):
        load_path(tmp_path, "train", val_fraction=0)
    data = load_path(tmp_path, "train", val_fraction=0, skip_bad=True)
    assert len(data) == 6 and sorted(Path(p).name for p in data.skipped) == ["broken.jpg", "empty.png"]
    assert describe(data)["skipped"] == 2
    assert len(load_path(tmp_path, "test")) == 1  # a clean split loads without skip_bad


def test_cache_hit_on_second_load(tmp_path, monkeypatch):
    make_tree(tmp_path / "t", {"a": 3, "b": 3})
    first = load_path(tmp_path / "t", "train", val_fraction=0, test_fraction=0)
    assert len(list((Path(os.environ["CNNLAB_CACHE"]) / "folders").glob("*.pt"))) == 1

    def no_decoding(*args, **kwargs):
        raise AssertionError("decoded again")

    monkeypatch.setattr(folder_mod, "_decode_all", no_decoding)
    second = load_path(tmp_path / "t", "train", val_fraction=0, test_fraction=0)
    assert torch.equal(first.images, second.images) and torch.equal(first.labels, second.labels)
    path = tmp_path / "t" / "a" / "000.png"
    os.utime(path, ns=(0, path.stat().st_mtime_ns + 10**9))  # a changed file means a new key
    with pytest.raises(AssertionError, match="decoded again"):
        load_path(tmp_path / "t", "train", val_fraction=0, test_fraction=0)


def test_mixed_or_large_images_are_file_backed(tmp_path):
    make_tree(tmp_path / "mix" / "a", {"x": 2}, size=(20, 30))
    make_tree(tmp_path / "mix" / "a", {"y": 2}, start=5, size=(40, 10), ext="jpg")
    data = load_path(tmp_path / "mix" / "a", "train", val_fraction=0, test_fraction=0)
    assert isinstance(data, FileImages) and data.image_shape == (3, 224, 224) and len(data) == 4
    img, label = data[0]
    assert img.shape == (3, 224, 224) and label == 0
    small = load_path(tmp_path / "mix" / "a", "train", val_fraction=0, test_fraction=0, image_size=16)
    assert isinstance(small, TensorImages) and small.image_shape == (3, 16, 16)
    make_tree(tmp_path / "big", {"z": 2}, size=(300, 300))
    assert isinstance(load_path(tmp_path / "big", "train", val_fraction=0, test_fraction=0), FileImages)


def make_mixed_with_bad_files(root: Path) -> None:
    """Mixed-size PNGs (so file-backed), one corrupt file and one truncated after its header."""
    make_tree(root, {"x": 3}, size=(20, 30))
    make_tree(root, {"y": 3}, start=5, size=(40, 10))
    (root / "x" / "corrupt.png").write_bytes(b"\x89PNG\r\n\x1a\n and then nothing of a PNG")
    Image.fromarray(np.full((64, 64, 3), 9, np.uint8)).save(root / "y" / "truncated.png")
    (root / "y" / "truncated.png").write_bytes((root / "y" / "truncated.png").read_bytes()[:100])


def test_skip_bad_in_a_file_backed_folder(tmp_path):
    make_mixed_with_bad_files(tmp_path / "mix")
    with pytest.raises(CnnlabError, match=r"corrupt.png: .*1 bad file\(s\) in mix/train.*--skip-bad"):
        load_dataset(str(tmp_path / "mix"), "train", val_fraction=0, test_fraction=0)
    data = load_dataset(str(tmp_path / "mix"), "train", skip_bad=True, val_fraction=0, test_fraction=0)
    assert isinstance(data, FileImages) and len(data) == 7
    assert [Path(p).name for p in data.skipped] == ["corrupt.png"] and describe(data)["skipped"] == 1
    with pytest.warns(UserWarning, match=r"truncated.png: cannot decode.*the next file stands in"):
        batches = list(Batches(data, 4, torch.device("cpu"), shuffle=False, workers=0).epoch(0))
    assert [tuple(x.shape) for x, _ in batches] == [(4, 3, 224, 224), (3, 3, 224, 224)]
    assert torch.cat([y for _, y in batches]).tolist() == [0, 0, 0, 1, 1, 1, 0]  # last: file 0 stands in


def test_file_backed_headers_are_read_once(tmp_path, monkeypatch):
    make_mixed_with_bad_files(tmp_path / "mix")
    load_path(tmp_path / "mix", "train", skip_bad=True)
    monkeypatch.setattr(folder_mod, "peek_image", None)  # a second load must not read headers
    monkeypatch.setattr(folder_mod, "_plan", lambda *args: ((3, 224, 224), False))
    val = load_path(tmp_path / "mix", "val", skip_bad=True, val_fraction=0.5)
    assert len(val) + len(val.skipped) == 4


def test_hostile_names_and_links_in_a_tree(tmp_path):
    make_tree(tmp_path / "t", {"a": 2, "b": 2})
    (tmp_path / "t" / "a" / "loop.png").symlink_to("loop.png")         # a link to itself
    (tmp_path / "t" / "b" / "up").symlink_to("..")                     # back up the tree
    os.mkfifo(tmp_path / "t" / "b" / "fifo.png")                       # not a file: ignored
    with open(os.fsencode(tmp_path / "t" / "a") + b"/\xff\x1b[31m.png", "wb") as f:
        f.write(b"junk")                                               # not UTF-8, ANSI codes
    with pytest.raises(CnnlabError, match=r"loop.png: cannot open \(Too many levels of symbolic") as e:
        load_path(tmp_path / "t", "train", val_fraction=0, test_fraction=0)
    assert "\x1b" not in str(e.value)
    data = load_path(tmp_path / "t", "train", val_fraction=0, test_fraction=0, skip_bad=True)
    assert (len(data), len(data.skipped)) == (4 + 2, 2 + 2)  # b's link to the root adds a's files


def test_memory_budget_falls_back_to_files(tmp_path):
    make_tree(tmp_path, {"a": 4})
    data = folder_mod.load_folder(tmp_path, "train", val_fraction=0, test_fraction=0,
                                  memory_budget=100)
    assert isinstance(data, FileImages) and data.image_shape == (3, 8, 8)


def test_gray_tree_has_one_channel(tmp_path):
    (tmp_path / "k").mkdir()
    for i in range(3):
        Image.new("L", (6, 6), i).save(tmp_path / "k" / f"{i}.png")
    data = load_path(tmp_path, "train", val_fraction=0, test_fraction=0)
    assert data.image_shape == (1, 6, 6)
    assert load_path(tmp_path, "train", val_fraction=0, test_fraction=0, channels=3).image_shape == (3, 6, 6)


# ---------------------------------------------------------------------------------------------
# errors, registry, named sets
# ---------------------------------------------------------------------------------------------

def test_unknown_layout(tmp_path):
    (tmp_path / "notes.txt").write_text("hello")
    (tmp_path / "sub").mkdir()
    with pytest.raises(CnnlabError, match=r"no dataset found; expected an IDX folder.*CIFAR.*image-folder"):
        load_path(tmp_path, "train")
    with pytest.raises(CnnlabError, match="notes.txt: expected a folder"):
        load_path(tmp_path / "notes.txt", "train")
    with pytest.raises(CnnlabError, match="no such file or folder"):
        load_dataset(str(tmp_path / "nowhere"), "train")


def test_registry_routes_paths_here(tmp_path):
    make_idx(tmp_path / "m", gz=True)
    assert len(load_dataset(str(tmp_path / "m"), "test")) == 20


def test_named_dataset_found_in_data_dir(tmp_path):
    make_idx(Path(os.environ["CNNLAB_DATA"]) / "mnist" / "MNIST" / "raw", gz=False)  # torchvision's layout
    train = load_dataset("mnist", "train", val_fraction=0.5)
    assert train.name == "mnist/train" and len(train) == 20 and train.classes[:4] == ["0", "1", "2", "3"]


def test_named_dataset_missing_says_where_and_how(tmp_path):
    with pytest.raises(CnnlabError, match=r"cifar100: not found \(looked in .*data[0-9]*/cifar100\).*--download"):
        load_dataset("cifar100", "train")


def test_describe_and_sample_grid(tmp_path):
    make_tree(tmp_path / "t", {"a": 5, "bb": 3})
    data = load_path(tmp_path / "t", "train", val_fraction=0, test_fraction=0)
    info = describe(data)
    assert info["count"] == 8 and info["class_counts"] == {"a": 5, "bb": 3}
    assert info["image_shape"] == (3, 8, 8) and info["skipped"] == 0
    out = save_sample_grid(data, tmp_path / "grid.png", n=6)
    with Image.open(out) as im:
        w, h = im.size
    assert w >= 3 * 64 and h >= 2 * 64  # 8x8 images are enlarged to readable tiles


# ---------------------------------------------------------------------------------------------
# real data (skipped where it is not on this machine)
# ---------------------------------------------------------------------------------------------

@pytest.mark.skipif(not CIFAR10_DIR.is_dir(), reason=f"no CIFAR-10 image folder at {CIFAR10_DIR}")
def test_real_cifar10_folder_test_split():
    test = load_path(CIFAR10_DIR, "test")
    assert isinstance(test, TensorImages) and len(test) == 10_000 and test.image_shape == (3, 32, 32)
    assert test.classes[:3] == ["airplane", "automobile", "bird"]
    assert set(describe(test)["class_counts"].values()) == {1000}
    assert 100 < test.images.float().mean() < 140


@pytest.mark.skipif(not FASHION_DIR.is_dir(),
                    reason=f"no {FASHION_DIR} (apt-get install dataset-fashion-mnist)")
def test_real_fashion_mnist():
    test = load_dataset("fashion-mnist", "test")
    assert len(test) == 10_000 and test.image_shape == (1, 28, 28) and test.name == "fashion-mnist/test"
    assert test.classes == list(FASHION_CLASSES)
    assert torch.bincount(test.labels).tolist() == [1000] * 10
