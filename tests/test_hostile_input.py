"""Hostile files: pickles that would run code or allocate gigabytes, YAML bombs and tags,
folders, FIFOs and binary files where a config or a dataset file is expected.

Each must give one CnnlabError naming the file, run nothing, and finish at once."""
import os
import pickle
import struct
import tracemalloc
from pathlib import Path

import pytest

from cnnlab.data.paths import load_path
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
