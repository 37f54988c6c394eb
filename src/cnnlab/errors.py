"""The one exception type that front ends turn into a single clear line (no traceback)."""


class CnnlabError(Exception):
    """A user-facing error: bad input, a bad option, a file that cannot be read.

    The message names the file or field and what was expected.
    """
