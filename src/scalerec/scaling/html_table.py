"""HTML tables of the scaling report: one cell format for every number (4 significant digits)."""

from __future__ import annotations

import html
import math
from typing import Any


def fmt(v: Any) -> str:
    """A cell: floats to 4 significant digits (enough to trace a number, short enough to scan)."""
    if v is None:
        return ""
    if isinstance(v, float):
        if math.isnan(v):
            return "nan"
        return f"{v:.4g}"
    return html.escape(str(v))


def html_table(rows: list[dict[str, Any]], columns: list[str]) -> str:
    """`rows` as a table of `columns` (a missing key is an empty cell, so tables of mixed rows render)."""
    head = "".join(f"<th>{html.escape(c)}</th>" for c in columns)
    body = "".join("<tr>" + "".join(f"<td>{fmt(r.get(c))}</td>" for c in columns) + "</tr>" for r in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"
