"""The README and docs/ say what is true: every link resolves, every command they show parses as
the CLI reads it, and the README stays a front door that links every page of the docs."""
from __future__ import annotations

import argparse
import contextlib
import io
import re
import shlex
from pathlib import Path

import pytest

from cnnlab import cli

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)")
CUT = {"|", "||", "&&", ";", "&"}  # a shell command ends here
REDIRECT = {"<", ">", ">>", "2>", "2>&1"}


def fenced_lines(text: str) -> list[str]:
    """The lines inside ``` blocks, with backslash continuations joined."""
    lines, fenced, pending = [], False, ""
    for line in text.splitlines():
        if line.startswith("```"):
            fenced = not fenced
            continue
        if fenced:
            if line.endswith("\\"):
                pending += line[:-1] + " "
                continue
            lines.append(pending + line)
            pending = ""
    return lines


def documented_commands(text: str) -> list[list[str]]:
    """The argv of every `cnnlab ...` (or `torchrun ... -m cnnlab ...`) shown in a code block."""
    found = []
    for line in fenced_lines(text):
        line = line.removeprefix("$ ").strip()
        if not re.match(r"(cnnlab|torchrun) ", line):  # output lines ("cnnlab: error: ...") do not match
            continue
        lexer = shlex.shlex(line, posix=True, punctuation_chars=True)
        lexer.whitespace_split = True
        tokens, skip = [], False
        for token in lexer:
            if skip:
                skip = False
            elif token in CUT:
                break
            elif token in REDIRECT:
                skip = True
            else:
                tokens.append(token)
        if tokens[0] == "torchrun":
            tokens = tokens[tokens.index("cnnlab"):]
        found.append(tokens[1:])
    return found


def option_strings(parser: argparse.ArgumentParser) -> set[str]:
    """Every flag of the parser and of its sub-commands, spelt out (argparse also takes prefixes)."""
    flags = set()
    for action in parser._actions:
        flags.update(action.option_strings)
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                flags |= option_strings(sub)
    return flags


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def anchors(page: Path) -> set[str]:
    text = re.sub(r"^```.*?^```", "", page.read_text(), flags=re.M | re.S)
    return {slug(m) for m in re.findall(r"^#+ (.+)$", text, re.M)}


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_every_relative_link_resolves(page):
    broken = []
    for target in LINK.findall(page.read_text()):
        if re.match(r"[a-z]+:", target):
            continue  # https://, mailto:
        path, _, anchor = target.partition("#")
        dest = (page.parent / path).resolve() if path else page
        if not dest.exists():
            broken.append(f"{target}: no {dest.relative_to(ROOT) if ROOT in dest.parents else dest}")
        elif anchor and dest.suffix == ".md" and anchor not in anchors(dest):
            broken.append(f"{target}: no heading with anchor #{anchor} in {dest.name}")
    assert not broken, f"{page.name}: " + "; ".join(broken)


def test_the_readme_is_a_front_door_to_every_page():
    readme = (ROOT / "README.md").read_text()
    assert len(readme.splitlines()) <= 260
    linked = set(LINK.findall(readme))
    missing = [p.name for p in PAGES[1:] if f"docs/{p.name}" not in linked]
    assert not missing, f"docs pages the README does not link: {missing}"


def test_every_documented_command_parses():
    """Each command the README and docs show is accepted by the CLI's parser as written."""
    parser = cli.build_parser()
    flags = option_strings(parser)
    commands = {page.name: documented_commands(page.read_text()) for page in PAGES}
    assert sum(map(len, commands.values())) > 80  # the parsing above finds them
    assert {argv[0] for argv in commands["README.md"]} >= {"train", "eval", "predict", "data", "serve", "export"}
    wrong = []
    for name, argvs in commands.items():
        for argv in argvs:
            err = io.StringIO()
            try:
                with contextlib.redirect_stderr(err):
                    _, extra = parser.parse_known_args(argv)
            except SystemExit:
                wrong.append(f"{name}: cnnlab {shlex.join(argv)}: {err.getvalue().strip().splitlines()[-1]}")
                continue
            prefixes = [x for x in argv if x.startswith("--") and x.split("=")[0] not in flags and x not in extra]
            if prefixes:  # argparse takes a prefix of a flag: the docs spell flags out
                wrong.append(f"{name}: cnnlab {shlex.join(argv)}: {prefixes} is only a prefix of a flag")
            if extra and (argv[0] != "predict" or any(x.startswith("-") for x in extra)):
                wrong.append(f"{name}: cnnlab {shlex.join(argv)}: unrecognized arguments {extra}")
    assert not wrong, "\n".join(wrong)


def test_the_readme_says_what_make_run_and_make_test_do():
    """The two commands of the front door, as the Makefile and CI run them."""
    readme = " ".join((ROOT / "README.md").read_text().split())
    makefile = (ROOT / "Makefile").read_text()
    run = re.search(r"^run:.*\n\t.*?/bin/(cnnlab .+)$", makefile, re.M).group(1)
    test = re.search(r"^test:.*\n\t\$\(PY\) -m (pytest.*)$", makefile, re.M).group(1)
    assert f"`{run}`" in readme and f"`{test}`" in readme, (run, test)
    ci_lanes = (ROOT / ".ci" / "run").read_text().rstrip().endswith("make test\nmake test-slow")
    assert ci_lanes and "`.ci/run`" in readme  # the fast lane, then the slow one
