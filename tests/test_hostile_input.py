"""Hostile files: pickles that would run code or allocate gigabytes, YAML bombs and tags,
folders, FIFOs and binary files where a config or a dataset file is expected.

Each must give one CnnlabError naming the file, run nothing, and finish at once."""
import os
import pickle
import signal
import struct
import tracemalloc
from pathlib import Path

import pytest

from cnnlab.data.formats.classification import load_path
from cnnlab.engine.config import TrainConfig
from cnnlab.errors import CnnlabError

# ---------------------------------------------------------------------------------------------
# CIFAR pickles
# ---------------------------------------------------------------------------------------------


class Reduce:
    """Pickles as ``fn(*args)``: what a malicious pickle asks the unpickler to call."""

    def __init__(self, fn, *args):
        self.fn, self.args = fn, args

    def __reduce__(self):
        return self.fn, self.args


def cifar_folder(root: Path, meta, test_batch) -> Path:
    """A CIFAR-10 folder whose batches.meta and test_batch are these raw pickle bytes."""
    folder = root / "cifar-10-batches-py"
    folder.mkdir()
    (folder / "batches.meta").write_bytes(meta)
    (folder / "test_batch").write_bytes(test_batch)
    return folder


def good_meta() -> bytes:
    return pickle.dumps({"label_names": [f"c{i}" for i in range(10)]}, protocol=2)


@pytest.mark.parametrize("payload", [
    lambda marker: Reduce(Path.touch, marker),
    lambda marker: Reduce(os.system, f"touch {marker}"),
    lambda marker: Reduce(exec, f"open({str(marker)!r}, 'w').close()"),
], ids=["Path.touch", "os.system", "exec"])
@pytest.mark.parametrize("where", ["meta", "batch"])
def test_cifar_pickle_runs_nothing(tmp_path, payload, where):
    marker = tmp_path / "marker"
    evil = pickle.dumps({"data": payload(marker), "labels": [0], "label_names": ["a"]}, protocol=2)
    meta, batch = (evil, good_meta()) if where == "meta" else (good_meta(), evil)
    cifar_folder(tmp_path, meta, batch)
    with pytest.raises(CnnlabError, match=r"(batches.meta|test_batch): not a CIFAR python pickle "
                                          r"\(refusing to load"):
        load_path(tmp_path, "test")
    assert not marker.exists()


def _memo_bomb() -> bytes:
    """12 bytes: PROTO 2, None, LONG_BINPUT 2**26, STOP (CPython sizes its memo to 2**27 slots)."""
    return b"\x80\x02N" + b"r" + struct.pack("<I", 2**26) + b"."


def _huge_bytes() -> bytes:
    """PROTO 4, BINBYTES8 announcing 2**40 bytes that are not there."""
    return b"\x80\x04\x8e" + struct.pack("<Q", 2**40) + b"xyz"


@pytest.mark.parametrize("meta", [_memo_bomb(), _huge_bytes(), b"\x80\x02(((((", b"\xff" * 64],
                         ids=["memo-bomb", "huge-bytes", "truncated", "garbage"])
def test_cifar_pickle_allocates_nothing_big(tmp_path, meta):
    cifar_folder(tmp_path, meta, good_meta())
    tracemalloc.start()
    try:
        with pytest.raises(CnnlabError, match="batches.meta: not a CIFAR python pickle"):
            load_path(tmp_path, "test")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 64 << 20


def test_cifar_fifo_is_refused_without_blocking(tmp_path):
    folder = cifar_folder(tmp_path, good_meta(), b"")
    (folder / "test_batch").unlink()
    os.mkfifo(folder / "test_batch")  # not a regular file: the folder lacks its test batch
    with pytest.raises(CnnlabError, match="test_batch is missing"):
        load_path(tmp_path, "test")


# ---------------------------------------------------------------------------------------------
# YAML configs
# ---------------------------------------------------------------------------------------------

def laughs(levels: int = 9) -> str:
    """The billion laughs: each anchor lists the previous one 9 times (9**9 values in all)."""
    lines = ["l0: &l0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    lines += [f"l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * 9)}]" for i in range(1, levels)]
    return "\n".join(lines) + f"\nmodel_args: {{widths: *l{levels - 1}}}\n"


@pytest.mark.parametrize("text,expect", [
    ("a: &a [*a, *a]\n", "aliases"),
    ("model_args: &a {self: *a}\n", "aliases"),
    (laughs(), "more than 10,000 values"),
    ("- " * 100_000 + "x\n", "nested too deeply"),
    (b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR", r"not a YAML text file \(byte 0"),
    (b"lr: 0.1\0\n", r"not a YAML text file \(byte 7: special characters"),
    ("lr: [1,\n", r"not valid YAML \(expected the node content.*line 2"),
], ids=["recursive", "recursive-known-key", "billion-laughs", "deep", "binary", "nul", "broken"])
def test_yaml_config_refused(tmp_path, text, expect):
    path = tmp_path / "recipe.yaml"
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    with pytest.raises(CnnlabError, match=f"recipe.yaml: .*{expect}"):
        TrainConfig.from_sources(yaml_path=str(path))


@pytest.mark.parametrize("tag", ["!!python/object/apply:os.system", "!!python/object/new:os.system",
                                 "!!python/object/apply:pathlib.Path.touch"])
def test_yaml_python_tags_run_nothing(tmp_path, tag):
    marker = tmp_path / "marker"
    arg = f"touch {marker}" if "system" in tag else str(marker)
    (tmp_path / "recipe.yaml").write_text(f"lr: {tag} [{arg!r}]\n")
    with pytest.raises(CnnlabError, match=r"recipe.yaml: not valid YAML \(could not determine a "
                                          r"constructor for the tag .*python/object"):
        TrainConfig.from_sources(yaml_path=str(tmp_path / "recipe.yaml"))
    assert not marker.exists()


@pytest.mark.parametrize("make,expect", [
    (lambda p: p.mkdir(), "is a folder"),
    (lambda p: os.mkfifo(p), "not a regular file"),
    (lambda p: p.symlink_to(p.name), "cannot read the config file .*symbolic links"),
    (lambda p: p.write_bytes(b"# " + b"x" * (2 << 20)), "[0-9,]+ bytes, too large for a config file"),
    (lambda p: None, "config file not found"),
], ids=["folder", "fifo", "symlink-loop", "huge", "missing"])
def test_yaml_config_not_a_file(tmp_path, make, expect):
    make(tmp_path / "recipe.yaml")
    signal.alarm(10)  # a FIFO opened for reading would block until a writer comes
    try:
        with pytest.raises(CnnlabError, match=f"recipe.yaml: {expect}"):
            TrainConfig.from_sources(yaml_path=str(tmp_path / "recipe.yaml"))
    finally:
        signal.alarm(0)


def test_yaml_hostile_file_name_is_printed_safely(tmp_path):
    path = os.fsencode(tmp_path) + b"/\xff\x1b[2Jrecipe.yaml"  # not UTF-8; "clear the screen"
    with open(path, "wb") as f:
        f.write(b"- not a mapping\n")
    with pytest.raises(CnnlabError, match=r"\\xffrecipe.yaml: expected a mapping") as e:
        TrainConfig.from_sources(yaml_path=os.fsdecode(path))
    str(e.value).encode("utf-8")  # no UnicodeEncodeError
