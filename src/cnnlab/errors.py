"""The one exception type that front ends turn into a single clear line (no traceback)."""
import re

_CONTROL = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]|[\x00-\x08\x0b-\x1f\x7f]")  # ANSI sequences, control chars


class CnnlabError(Exception):
    """A user-facing error: bad input, a bad option, a file that cannot be read.

    The message names the file or field and what was expected.
    """


class MissingSplit(CnnlabError):
    """The data has no such split (no test set): an outcome, unlike a split that cannot be read."""


def unknown_name(kind: str, name: str, known) -> CnnlabError:
    """``unknown model 'resnt18'; did you mean resnet18? known: ...`` for any registry."""
    import difflib

    known = sorted(known)
    close = difflib.get_close_matches(str(name), known, n=3, cutoff=0.6)
    hint = f"; did you mean {' or '.join(close)}?" if close else ""
    return CnnlabError(f"unknown {kind} {name!r}{hint} (known: {', '.join(known)})")


def clean(text) -> str:
    """``text`` as one printable line: ANSI escape sequences and control characters removed,
    line breaks joined with ``; ``, undecodable bytes of file names shown as ``\\xNN``."""
    text = str(text)
    try:
        text = text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    except UnicodeEncodeError:  # surrogates that are not escaped bytes
        text = text.encode("utf-8", "backslashreplace").decode("utf-8")
    text = _CONTROL.sub("", text.replace("\r\n", "\n"))
    return "; ".join(line.strip() for line in text.split("\n") if line.strip())
