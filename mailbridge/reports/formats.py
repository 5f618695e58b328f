"""Reports as people and programs read them: a rich table, CSV, JSON or a Markdown table.

CSV and JSON carry the stable lower_snake_case column names; percentages and averages are
numbers with one decimal place (87.5, never "87.5%"); an empty figure (a percentage of
nothing) is an empty CSV cell and a JSON null.
"""

from __future__ import annotations

import csv
import io
import json
from decimal import Decimal
from enum import StrEnum
from typing import Any

from rich.console import Console
from rich.table import Table

from mailbridge.reports.definitions import TOTAL
from mailbridge.reports.report import Report, is_number


class ReportFormat(StrEnum):
    table = "table"
    csv = "csv"
    json = "json"
    markdown = "markdown"


def _plain(value: Any) -> Any:
    if isinstance(value, Decimal):
        return float(value)  # one decimal place already; float(Decimal("87.5")) prints 87.5
    return value


def _text(value: Any) -> str:
    return "" if value is None else str(value)


def to_csv(report: Report) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(report.columns)
    for row in report.rows:
        writer.writerow([_text(row.get(c)) for c in report.columns])
    return out.getvalue()


def to_json(report: Report) -> str:
    rows = [{c: _plain(row.get(c)) for c in report.columns} for row in report.rows]
    return json.dumps(rows, indent=2, ensure_ascii=False) + "\n"


def to_markdown(report: Report) -> str:
    numeric = [any(is_number(r.get(c)) for r in report.rows) for c in report.columns]
    lines = [
        f"**{report.title}**",
        "",
        "| " + " | ".join(report.columns) + " |",
        "| " + " | ".join("---:" if n else "---" for n in numeric) + " |",
    ]
    for row in report.rows:
        cells = [_text(row.get(c)).replace("|", "\\|") for c in report.columns]
        if row.get(report.columns[0]) == TOTAL:
            cells = [f"**{cell}**" if cell else cell for cell in cells]
        lines.append("| " + " | ".join(cells) + " |")
    lines.extend(f"\n{note}" for note in report.notes)
    return "\n".join(lines) + "\n"


def rich_table(report: Report) -> Table:
    table = Table(title=report.title, caption="\n".join(report.notes) or None)
    for column in report.columns:
        numeric = any(is_number(r.get(column)) for r in report.rows)
        table.add_column(column, justify="right" if numeric else "left")
    for row in report.rows:
        total = row.get(report.columns[0]) == TOTAL
        table.add_row(*(_text(row.get(c)) for c in report.columns), style="bold" if total else None)
    return table


def render(report: Report, fmt: ReportFormat) -> str:
    """Every format but `table` as text; `table` goes through rich (see print_report)."""
    if fmt is ReportFormat.csv:
        return to_csv(report)
    if fmt is ReportFormat.json:
        return to_json(report)
    if fmt is ReportFormat.markdown:
        return to_markdown(report)
    console = Console(file=io.StringIO(), width=200, record=True)
    console.print(rich_table(report))
    return console.export_text()


def print_report(report: Report, fmt: ReportFormat, console: Console | None = None) -> None:
    if fmt is ReportFormat.table:
        (console or Console()).print(rich_table(report))
    else:
        print(render(report, fmt), end="")
