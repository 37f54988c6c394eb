"""The CLI and API explain themselves: train --help from the config fields' metadata, API signatures and
docstrings, shell completion, packaged recipes (`cnnlab recipes`, `--config NAME`), `cnnlab samples`."""
import argparse
import dataclasses
import inspect
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import cnnlab
from cnnlab import cli
from cnnlab.engine.config import RECIPES, TrainConfig, config_keys, recipe_names, recipe_path
from cnnlab.errors import CnnlabError

ROOT = Path(__file__).resolve().parents[1]
FIELDS = list(config_keys())  # TrainConfig's fields and the tasks' own (SegmentConfig, CaptionConfig)


def train_parser() -> argparse.ArgumentParser:
    sub = next(a for a in cli.build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    return sub.choices["train"]


def run_main(args, capsys):
    code = cli.main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


# ---------------------------------------------------------------------- train --help
def test_every_config_field_has_help_and_a_group():
    shared = [f.name for f in dataclasses.fields(TrainConfig) if f.name not in ("task_config", "given")]
    assert FIELDS[0] == "task" and set(shared) < set(FIELDS)
    assert {"backbone", "class_weights", "ohem", "scale", "crop", "min_word_count", "attention_reg"} == set(FIELDS) - set(shared)
    for name, key in config_keys().items():
        assert key.field.metadata["help"], f"{name}: no help"
        assert key.group in cli.GROUP_ORDER, f"{name}: group {key.group!r}"
    assert {k.group for k in config_keys().values()} == set(cli.GROUP_ORDER)
    assert config_keys()["scale"].task == "segment" and config_keys()["scale"].describe().startswith("segment: ")


def test_train_help_groups_every_option_once_with_default_choices_and_range():
    parser = train_parser()
    titles = [g.title for g in parser._action_groups]
    seen: dict[str, str] = {}
    for group in parser._action_groups:
        for action in group._group_actions:
            if action.dest in FIELDS:
                assert action.dest not in seen, f"{action.dest} in {seen.get(action.dest)} and {group.title}"
                seen[action.dest] = group.title
    assert sorted(seen) == sorted(FIELDS)
    assert [t.split()[0] for t in titles if t.split()[0] in cli.GROUP_ORDER] == list(cli.GROUP_ORDER)
    actions = {a.dest: a for a in parser._actions}
    for name in FIELDS:
        text = actions[name].help.replace("%%", "%")
        assert config_keys()[name].field.metadata["help"] in text and "default" in text, name
        for choice in config_keys()[name].choices or ():
            assert choice in text
    assert "0.0..0.999" in actions["momentum"].help and config_keys()["momentum"].field.metadata["range"] == (0.0, 0.999)
    assert actions["optimizer"].metavar == "{sgd,adamw}" and actions["amp"].metavar == "{auto,bf16,bf16-full,fp16,off}"
    assert actions["task"].metavar == "{auto,classify,detect,segment,caption}"  # the task registry's names
    rendered = parser.format_help()
    assert "optimisation (" in rendered and "--weight-decay" in rendered and "example: cnnlab train" in rendered


def test_model_args_from_the_command_line():
    a = cli.build_parser().parse_args(["train", "--model-args", "{widths: [4, 8]}"])
    assert TrainConfig.from_sources(model_args=a.model_args).model_args == {"widths": [4, 8]}


# ---------------------------------------------------------------------- the API
@pytest.mark.parametrize("fn, options", [
    (cnnlab.train, ["data", "model", "epochs", "batch_size", "lr", "device", "out"]),
    (cnnlab.evaluate, ["batch_size", "device", "plots", "tta", "images"]),
    (cnnlab.predict, ["batch_size"]),  # the task's options come as **options, checked by the task
    (cnnlab.explain, ["model", "pretrained", "method", "layer", "target_class", "device"]),
    (cnnlab.export, ["out", "atol", "device"]),
])
def test_api_functions_have_real_signatures_and_examples(fn, options):
    params = inspect.signature(fn).parameters
    for name in options:
        p = params[name]
        assert p.kind is inspect.Parameter.KEYWORD_ONLY, f"{fn.__name__}({name}=...) is not keyword-only"
        assert p.annotation is not inspect.Parameter.empty and p.default is not inspect.Parameter.empty
    doc = inspect.getdoc(fn)
    assert f"cnnlab.{fn.__name__}(" in doc, f"{fn.__name__}: no example"


def test_predict_documents_every_tasks_options():
    from cnnlab.tasks.options import TASK_OPTIONS

    doc = inspect.getdoc(cnnlab.predict)
    for options in TASK_OPTIONS.values():
        for f in dataclasses.fields(options):
            assert f.name in doc, f"cnnlab.predict's docstring does not name the option {f.name}"


def test_help_of_train_lists_the_common_options():
    doc = inspect.getdoc(cnnlab.train)
    for word in ("data:", "model:", "epochs", "device:", "config:", "recipe", "**options"):
        assert word in doc


# ---------------------------------------------------------------------- recipes
def test_recipes_live_in_the_package_and_the_old_path_is_a_symlink():
    link = ROOT / "recipes"
    assert link.is_symlink() and os.readlink(link) == "src/cnnlab/recipes"
    assert RECIPES == ROOT / "src" / "cnnlab" / "recipes"
    assert {"fashion-mnist", "cifar10", "segment-shapes", "detect-shapes", "caption-shapes"} <= set(recipe_names())
    assert '"cnnlab" = ["recipes/*.yaml"]' in (ROOT / "pyproject.toml").read_text()


@pytest.mark.parametrize("name", recipe_names())
def test_every_recipe_loads_by_name(name):
    cfg = TrainConfig.from_sources(name)
    assert cfg.to_dict() == TrainConfig.from_sources(RECIPES / f"{name}.yaml").to_dict()


def test_config_by_name_by_path_and_unknown(tmp_path):
    assert recipe_path("fashion-mnist") == RECIPES / "fashion-mnist.yaml"
    assert recipe_path("fashion-mnist.yaml") == RECIPES / "fashion-mnist.yaml"
    assert recipe_path("recipes/fashion-mnist.yaml") == Path("recipes/fashion-mnist.yaml")
    mine = tmp_path / "fashion-mnist"  # an existing path wins over a recipe's name
    mine.write_text("epochs: 3\n")
    assert TrainConfig.from_sources(mine).epochs == 3
    with pytest.raises(CnnlabError, match="did you mean fashion-mnist"):
        recipe_path("fashion-mnst")
    with pytest.raises(CnnlabError, match="config file not found"):
        TrainConfig.from_sources(tmp_path / "nowhere.yaml")


def test_cnnlab_recipes_lists_them(capsys):
    code, out, _ = run_main(["recipes"], capsys)
    assert code == 0
    for name in recipe_names():
        assert re.search(rf"^{re.escape(name)}\s+\w+\s+\S+\s+\S+", out, re.M), name
    assert "93% test top-1" in out
    code, out, _ = run_main(["recipes", "--json"], capsys)
    rows = {r["name"]: r for r in json.loads(out)}
    assert rows["segment-shapes"]["task"] == "segment" and rows["fashion-mnist"]["model"] == "airbench"


def test_unknown_recipe_is_one_line(capsys):
    code, _, err = run_main(["train", "--config", "fashion-mnst"], capsys)
    assert code == 2 and err.count("\n") == 1 and "did you mean fashion-mnist" in err


# ---------------------------------------------------------------------- samples
def test_samples_cover_the_docs_and_are_readable(tmp_path, capsys, monkeypatch):
    from cnnlab.data.builtin.samples import SAMPLES
    from cnnlab.images import read_image

    docs = "\n".join(page.read_text() for page in [ROOT / "README.md", *(ROOT / "docs").glob("*.md")])
    found = re.findall(r"^\$? ?cnnlab (?:predict|pixels|convolve|explain|detect-faces)\b.*?(\S*\b[\w-]+\.(?:png|jpg))\b",
                       docs, re.M)
    used = {Path(p).name for p in found if "shared/data/" not in p}  # photos of the real datasets are data
    used -= {"best.png"}
    assert used and used <= set(SAMPLES), used - set(SAMPLES)
    monkeypatch.setenv("CNNLAB_CAMVID", str(tmp_path / "no-camvid"))
    code, out, _ = run_main(["samples", "--out", tmp_path, "digit.png", "scene1.png", "chelsea.png",
                             "empty.jpg", "road.png"], capsys)
    assert code == 0
    assert read_image(tmp_path / "digit.png").shape == (1, 8, 8)
    assert read_image(tmp_path / "scene1.png").shape == (3, 64, 64)
    assert (tmp_path / "empty.jpg").stat().st_size == 0
    assert "skipped" in out and "CamVid" in out and not (tmp_path / "road.png").exists()
    if "chelsea.png" in out.split("skipped")[0]:
        assert read_image(tmp_path / "chelsea.png").shape == (3, 300, 451)
    code, _, err = run_main(["samples", "--out", tmp_path, "nosuch.png"], capsys)
    assert code == 2 and "unknown sample" in err


# ---------------------------------------------------------------------- completion
@pytest.mark.skipif(not shutil.which("bash"), reason="bash is not installed")
def test_bash_completion():
    script = f"""
source <("{sys.executable}" -m cnnlab completion bash) || exit 3
complete -p cnnlab
comp() {{ COMP_WORDS=("$@"); COMP_CWORD=$((${{#COMP_WORDS[@]}} - 1)); COMPREPLY=(); _cnnlab; echo "${{COMPREPLY[*]}}"; }}
comp cnnlab tr
comp cnnlab train --weight-d
comp cnnlab train --optimizer ""
comp cnnlab train --config fashion
comp cnnlab completion ""
comp cnnlab eval ckpt --split v
comp cnnlab pixels README.m
"""
    proc = subprocess.run(["bash", "-c", script], capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0].startswith("complete") and lines[0].endswith(" cnnlab")
    assert lines[1:] == ["train", "--weight-decay", "sgd adamw", "fashion-mnist", "bash zsh", "val", "README.md"]


def test_zsh_completion(capsys):
    code, out, _ = run_main(["completion", "zsh"], capsys)
    assert code == 0 and out.startswith("#compdef cnnlab")
    assert "compdef _cnnlab cnnlab" in out and "(sgd adamw)" in out and "--optimizer[" in out
    assert "'samples:" in out and ":_files" in out
    if shutil.which("zsh"):
        proc = subprocess.run(["zsh", "-n"], input=out, capture_output=True, text=True, timeout=30)
        assert proc.returncode == 0, proc.stderr
