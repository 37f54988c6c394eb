"""The layers of DESIGN.md hold: every import in the package points down (or sideways within its layer).

The order, bottom to top; a module may import its own layer and the layers below it, never above.
Imports inside functions count too (a lazy import is still a dependency).
"""
from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "cnnlab"

LAYERS = [
    ["errors", "_version"],   # the one error type users see; the version
    ["images", "figures", "files", "memory", "video"],  # decode / validate images; write figures; write any
                                                        # file safely; bound memory before allocating; video
                                                        # files in and out a frame at a time
    ["data"],                 # datasets and formats
    ["models"],               # model registry and builders
    ["runtime"],              # device, precision policy, distributed reductions
    ["tasks"],                # classify, segment, detect, caption behind one contract
    ["engine"],               # the training loop, checkpoints, memory budgets
    ["deploy"],               # a trained model as a Predictor (eager, ONNX), export
    ["interpret"],            # convolution from scratch, kernels, feature maps, filters, CAMs
    ["experiments"],          # the lecture's arguments as measured experiments
    ["api"],                  # the public Python functions
    ["serve"],                # HTTP service and web page over api
    ["cli"],                  # the command line over api: one module per command; shell completion
]
TOP = {"__init__", "__main__"}  # the package's front door: it may import anything


def layer_of(module: str) -> int | None:
    """The layer index of ``cnnlab.<module>...``, None for the front door."""
    head = module.split(".")[0]
    if head in TOP:
        return None
    for i, names in enumerate(LAYERS):
        if head in names:
            return i
    raise AssertionError(f"cnnlab.{module} belongs to no layer of DESIGN.md: add it to LAYERS")


def cnnlab_imports(path: Path) -> list[tuple[int, str]]:
    """(line, 'sub.module') for every import of cnnlab.* in ``path``, relative ones resolved."""
    tree = ast.parse(path.read_text(), str(path))
    package = ".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts[:-1])
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                name = ".".join(base + ([node.module] if node.module else []))
            else:
                name = node.module or ""
            if name == "cnnlab":  # `from cnnlab import api, __version__`: each name is a module or the package
                found += [(node.lineno, f"cnnlab.{a.name}" if a.name != "__version__" else "cnnlab.__init__")
                          for a in node.names]
            else:
                found.append((node.lineno, name))
    return [(line, name[len("cnnlab."):]) for line, name in found if name.startswith("cnnlab.")]


def test_every_import_points_down_the_layers():
    wrong = []
    for path in sorted(PACKAGE.rglob("*.py")):
        module = ".".join(path.relative_to(PACKAGE).with_suffix("").parts)
        own = layer_of(module)
        if own is None:
            continue
        for line, target in cnnlab_imports(path):
            theirs = layer_of(target)
            if theirs is None or theirs > own:
                wrong.append(f"{path.relative_to(PACKAGE)}:{line} imports cnnlab.{target} "
                             f"({'the package front door' if theirs is None else LAYERS[theirs][0]}) "
                             f"from layer {LAYERS[own][0]}")
    assert not wrong, "imports pointing up the layers:\n" + "\n".join(wrong)


def test_every_package_says_what_its_layer_offers():
    for folder in sorted(p for p in PACKAGE.iterdir() if p.is_dir() and p.name != "__pycache__"):
        if any(folder.glob("*.py")):
            init = folder / "__init__.py"
            assert init.is_file() and ast.get_docstring(ast.parse(init.read_text())), f"{folder.name}/__init__.py"


def test_the_package_and_the_cli_start_without_torch():
    """`import cnnlab`, `cnnlab --help` and `cnnlab pixels` load no torch; the API still resolves;
    importing writes nothing into the environment (the thread policy waits for a command or a run)."""
    import os
    import subprocess
    import sys

    code = ("import os, sys; before = dict(os.environ); import cnnlab, cnnlab.cli; "
            "assert 'torch' not in sys.modules, 'torch loaded'; "
            "assert dict(os.environ) == before, 'import cnnlab changed os.environ'; "
            "import cnnlab.interpret.features; assert callable(cnnlab.explain) and cnnlab.api.predict")
    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env=env)
    assert proc.returncode == 0, proc.stderr


def test_the_data_core_reads_no_format_and_no_builtin_set():
    """Inside data/: the core (data/*.py) imports neither formats/ nor builtin/ (the package's
    __init__ imports them to register them), and the format readers import no built-in set."""
    data = PACKAGE / "data"
    wrong = []
    for path in sorted(data.rglob("*.py")):
        part = path.relative_to(data).parts
        if part == ("__init__.py",):
            continue
        barred = ("data.formats", "data.builtin") if len(part) == 1 else \
            ("data.builtin",) if part[0] == "formats" else ()
        wrong += [f"{path.relative_to(PACKAGE)}:{line} imports cnnlab.{target}"
                  for line, target in cnnlab_imports(path) if target.startswith(barred)]
    assert not wrong, "\n".join(wrong)
