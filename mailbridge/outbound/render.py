"""Rendering automatic emails from Jinja2 templates: a plain-text part always, HTML where it helps.

Councils restyle mail by putting a template of the same name in `templates.dir` (config); it
wins over the bundled one in templates/mail. Inbound text reaches templates only as values —
never as template source — and HTML templates are autoescaped, so nothing a sender writes is
ever run as template code or shown as raw HTML. The sandbox keeps council-edited templates
from reaching Python internals.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any

from jinja2 import ChoiceLoader, FileSystemLoader, StrictUndefined, TemplateNotFound
from jinja2.sandbox import SandboxedEnvironment

from mailbridge import bundled_templates

BUNDLED = bundled_templates() / "mail"


@dataclass(frozen=True)
class Rendered:
    text: str
    html: str | None


def long_date(value: date | datetime) -> str:
    """'Friday 4 December' — how a council writes a date in a letter."""
    return f"{value:%A} {value.day} {value:%B}"


class Renderer:
    def __init__(self, override_dir: Path | None = None):
        self.override_dir = override_dir
        dirs = [override_dir] if override_dir else []
        loader = ChoiceLoader([FileSystemLoader(str(d)) for d in (*dirs, BUNDLED)])
        self.env = SandboxedEnvironment(
            loader=loader,
            autoescape=lambda name: bool(name and name.endswith(".html.j2")),
            undefined=StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
            keep_trailing_newline=True,
        )
        self.env.filters["long_date"] = long_date

    def render(self, name: str, **context: Any) -> Rendered:
        """`name`.txt.j2 (required) and `name`.html.j2 (optional)."""
        text = self.env.get_template(f"{name}.txt.j2").render(**context)
        try:
            html = self.env.get_template(f"{name}.html.j2").render(**context)
        except TemplateNotFound:
            html = None
        return Rendered(text, html)
