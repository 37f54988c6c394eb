"""``cnnlab cache``: cnnlab's cache folder (decoded datasets, traces) with sizes; ``cache clear`` empties it."""
from __future__ import annotations

import argparse


def add(sub) -> argparse.ArgumentParser:
    ca = sub.add_parser("cache", help="list cnnlab's cache folder (decoded datasets, traces) with sizes; "
                        "`cache clear` empties it")
    ca.add_argument("action", nargs="?", choices=["list", "clear"], default="list")
    return ca


def run(a) -> int:
    from cnnlab.data.cache import cache_contents, clear_cache
    from cnnlab.data.cache import cache_root
    from cnnlab.memory import gb

    if a.action == "clear":
        count, size = clear_cache()
        print(f"deleted {count} files ({gb(size)}) from {cache_root()}")
        return 0
    entries = cache_contents()
    print(f"{cache_root()}  (set CNNLAB_CACHE to move it)")
    for e in entries:
        print(f"  {gb(e.bytes):>9}  {len(e.files):>6} files  {e.what}  ({e.folder})")
    print(f"  {gb(sum(e.bytes for e in entries)):>9}  in all; `cnnlab cache clear` deletes all but the downloads")
    return 0
