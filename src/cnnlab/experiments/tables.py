"""An experiment's table, written twice beside its figure: ``NAME.json`` and ``NAME.md``."""
from __future__ import annotations

import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # experiments draw off-screen, also from a server's threads

from cnnlab.figures import save_figure as write_figure  # noqa: E402
from cnnlab.files import write_text  # noqa: E402

Column = tuple[str, str, str]  # (row key, header, format spec such as ".2%" or ",d")


def markdown_table(rows: list[dict], columns: list[Column]) -> str:
    """A Markdown table of ``rows``, one column per (key, header, format)."""
    lines = ["| " + " | ".join(h for _, h, _ in columns) + " |",
             "|" + "|".join("---" for _ in columns) + "|"]
    for row in rows:
        cells = [_cell(row.get(key), fmt) for key, _, fmt in columns]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def write_table(out: str | Path, name: str, rows: list[dict], columns: list[Column],
                title: str, notes: list[str] = (), extra: dict | None = None) -> dict[str, str]:
    """Write ``out/NAME.json`` (rows, notes and ``extra``) and ``out/NAME.md``; their paths."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    table = markdown_table(rows, columns)
    md = "\n".join([f"## {title}", "", table, "", *(f"- {n}" for n in notes)]) + "\n"
    write_text(out / f"{name}.md", md)
    payload = {"title": title, "rows": rows, "notes": list(notes), **(extra or {})}
    write_text(out / f"{name}.json", json.dumps(payload, indent=2, default=_jsonable))
    return {"json": str(out / f"{name}.json"), "markdown": str(out / f"{name}.md"), "table": table}


def save_figure(fig, path: str | Path, dpi: int = 90) -> str:
    """Save and close a matplotlib figure (small PNG: README figures stay under 300 KB)."""
    return str(write_figure(fig, path, dpi=dpi, bbox_inches="tight"))


def _cell(value, fmt: str) -> str:
    if value is None:
        return "-"
    if isinstance(value, str):
        return value
    return format(value, fmt)


def _jsonable(value):
    if hasattr(value, "tolist"):
        return value.tolist()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")
