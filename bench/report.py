"""The readable table of results (Markdown, also printed)."""

from __future__ import annotations

from collections.abc import Sequence

from bench.common import Row


def _num(value: float | None) -> str:
    if value is None:
        return "-"
    if value >= 100:
        return f"{value:.0f}"
    if value >= 10:
        return f"{value:.1f}"
    if value >= 0.1:
        return f"{value:.2f}"
    return f"{value:.3f}"


def _verdict(row: Row) -> str:
    if row.note.startswith("skipped"):
        return "skip"
    if row.ok is None:
        return ""
    return "PASS" if row.ok else "miss"


def table(rows: Sequence[Row]) -> str:
    head = (
        "| bench | measurement | median | p95 | unit | peer | peer median | ratio | target "
        "| result | note |"
    )
    lines = [head, "|" + "---|" * 11]
    for r in rows:
        ratio = "-" if r.ratio is None else f"{r.ratio:.2f}x"
        lines.append(
            f"| {r.bench} | {r.name} | {_num(r.median)} | {_num(r.p95)} | {r.unit} "
            f"| {r.peer or '-'} | {_num(r.peer_median)} | {ratio} | {r.target or '-'} "
            f"| {_verdict(r)} | {r.note} |"
        )
    return "\n".join(lines)
