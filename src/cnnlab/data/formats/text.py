"""Reading the user's text files (class lists, image lists, captions) strictly as UTF-8.

    text = read_utf8(root / "classes.txt")   # str, a BOM dropped; else one CnnlabError line

A file in another encoding (Latin-1, UTF-16, a binary file) is refused with the byte and its
offset, never guessed at: a misread class or file name would be silently wrong.
"""
from __future__ import annotations

from pathlib import Path

from cnnlab.errors import CnnlabError

BOM = b"\xef\xbb\xbf"  # UTF-8's byte-order mark, which Windows editors put first


def read_utf8(path: str | Path, what: str = "") -> str:
    """The text of ``path`` decoded as UTF-8 (a leading BOM tolerated and dropped).

    Raises CnnlabError naming the file (and ``what`` it is: "class list"): not UTF-8 (the first
    bad byte and its offset), or not readable (missing, a folder, no permission).
    """
    the = f"the {what} " if what else ""
    try:
        data = Path(path).read_bytes()
    except OSError as e:
        raise CnnlabError(f"{path}: cannot read {the}({e.strerror or type(e).__name__})") from None
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as e:  # e.start counts from after a BOM
        offset = e.start + (len(BOM) if data.startswith(BOM) else 0)
        raise CnnlabError(f"{path}: {the}{'is ' if what else ''}not UTF-8 text (byte 0x{data[offset]:02x} at "
                          f"offset {offset}); save it as UTF-8") from None
