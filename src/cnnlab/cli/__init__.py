"""The command line: a thin layer over ``cnnlab.api``, one module per command, one table.

Each command module declares its parser beside its handler: ``add(sub)`` registers the
sub-parser and returns it, ``run(args) -> int`` does the work. ``COMMANDS`` lists them in
``--help`` order. It names no task: a checkpoint's task renders its own results
(``tasks.base.Task``). Commands import ``cnnlab.api`` (and so torch) when they run, so
``--help`` answers at once.

Every error the user can cause prints one line (``cnnlab: error: ...``) and exits 2.
"""
from __future__ import annotations

import argparse
import os
import sys
import warnings
from pathlib import Path

from cnnlab._version import __version__
from cnnlab.cli import (cache, completion, convolve, data, detect_faces, evaluate, experiment, explain, export,
                        models, pixels, predict, recipes, samples, serve, train, xo)
from cnnlab.cli.common import json_text
from cnnlab.cli.options import GROUP_ORDER
from cnnlab.errors import CnnlabError, clean
from cnnlab.runtime.threads import apply_thread_policy

__all__ = ["COMMANDS", "GROUP_ORDER", "build_parser", "json_text", "main"]

# the commands, in `cnnlab --help` order: each module's add(sub) declares it, its run(args) runs it
COMMANDS = (train, evaluate, predict, export, serve, models, data, pixels, convolve, explain, xo, experiment,
            detect_faces, recipes, samples, cache, completion)


def build_parser() -> argparse.ArgumentParser:
    """The ``cnnlab`` parser: the global flags, then one sub-parser per entry of ``COMMANDS``."""
    p = argparse.ArgumentParser(prog="cnnlab", description="Convolutional neural networks for computer "
                                "vision: see, train, evaluate and explain CNNs.")
    p.add_argument("--version", action="version", version=f"cnnlab {__version__}")
    p.add_argument("--debug", action="store_true", default=bool(os.environ.get("CNNLAB_DEBUG")),
                   help="show the full traceback of an internal error (also CNNLAB_DEBUG=1)")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    for command in COMMANDS:
        command.add(sub).set_defaults(fn=command.run)
    return p


def main(argv: list[str] | None = None) -> int:
    """Run ``cnnlab ARGV``; the exit code (0 done, 2 the user's input was wrong, 1 a bug, 130 interrupted)."""
    parser = build_parser()
    a, extra = parser.parse_known_args(argv)
    if extra and getattr(a, "fn", None) is predict.run and not any(x.startswith("-") for x in extra):
        a.images += extra  # `predict CKPT --task detect IMG`: images after options
    elif extra:
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    if not getattr(a, "fn", None):
        parser.print_help()
        return 0
    warnings.showwarning = _show_warning
    apply_thread_policy()  # before the command loads torch (runtime/threads.py)
    try:
        code = a.fn(a)
        sys.stdout.flush()  # a closed pipe shows here, not at interpreter exit
        return code
    except CnnlabError as e:
        return _fail(clean(e))
    except KeyboardInterrupt:
        print("cnnlab: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `cnnlab models | head -1`: the reader left; end quietly
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141  # as a shell reports a process ended by SIGPIPE
    except OSError as e:  # a file or folder the user named: unwritable, full disk, a directory...
        if a.debug:
            raise
        return _fail(clean(f"{e.filename}: {e.strerror}" if e.filename else e))
    except MemoryError:
        return _fail("out of memory: use smaller images, a smaller --batch-size or fewer inputs")
    except Exception as e:  # a bug in cnnlab: one line, the trace in a file
        if a.debug:
            raise
        trace = _write_trace()
        print(f"cnnlab: internal error: {clean(f'{type(e).__name__}: {e}')[:300]}\n"
              f"  the full trace is in {trace}; `cnnlab --debug ...` shows it (please report it)", file=sys.stderr)
        return 1


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    """A warning as one line on stderr (``cnnlab: warning: ...``), not Python's two with a source line."""
    print(f"cnnlab: warning: {clean(message)}", file=sys.stderr)


def _fail(message: str) -> int:
    """One line on stderr, exit code 2: the user's input was wrong."""
    print(f"cnnlab: error: {message}", file=sys.stderr)
    return 2


def _write_trace() -> str:
    """The current exception's traceback in a file (the cache folder); its path."""
    import tempfile
    import time
    import traceback

    from cnnlab.files import write_text

    folder = Path(os.environ.get("CNNLAB_CACHE") or Path.home() / ".cache" / "cnnlab")
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError:
        folder = Path(tempfile.gettempdir())
    path = folder / f"crash-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}.txt"
    write_text(path, traceback.format_exc())
    return str(path)
