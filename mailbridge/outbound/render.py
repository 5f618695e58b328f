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
from functools import lru_cache
from pathlib import Path
from typing import Any

from jinja2 import ChoiceLoader, FileSystemLoader, StrictUndefined, Template, TemplateNotFound
from jinja2.sandbox import SandboxedEnvironment

from mailbridge import bundled_templates

BUNDLED = bundled_templates() / "mail"
_DICT_ATTRIBUTES = frozenset(dir({}))


@dataclass(frozen=True)
class Rendered:
    text: str
    html: str | None


def long_date(value: date | datetime) -> str:
    """'Friday 4 December' — how a council writes a date in a letter."""
    return _long_date(value.year, value.month, value.day)


@lru_cache(maxsize=1024)
def _long_date(year: int, month: int, day: int) -> str:
    """Cached, as strftime costs microseconds and a run's letters name few days; keyed by the
    date's fields, as aware datetimes at one instant are equal whatever their day there."""
    value = date(year, month, day)
    return f"{value:%A} {day} {value:%B}"


class _Sandbox(SandboxedEnvironment):
    """The sandbox, reading a key of a plain dict (`case.due`) without first trying and failing
    to read it as an attribute: the same value, as a dict has no attributes but dict's own."""

    def getattr(self, obj: Any, attribute: str) -> Any:
        if type(obj) is dict and attribute in obj and attribute not in _DICT_ATTRIBUTES:
            return obj[attribute]
        return super().getattr(obj, attribute)


class Renderer:
    """Templates are read and compiled once, on first use: an edited template takes effect
    when the daemon (and so its workers) starts again."""

    def __init__(self, override_dir: Path | None = None):
        self.override_dir = override_dir
        dirs = [override_dir] if override_dir else []
        loader = ChoiceLoader([FileSystemLoader(str(d)) for d in (*dirs, BUNDLED)])
        self.env = _Sandbox(
            loader=loader,
            autoescape=lambda name: bool(name and name.endswith(".html.j2")),
            undefined=StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
            keep_trailing_newline=True,
            auto_reload=False,  # no stat of every template (and include) on every email
        )
        self.env.filters["long_date"] = long_date
        self._templates: dict[str, tuple[Template, Template | None]] = {}

    def render(self, name: str, **context: Any) -> Rendered:
        """`name`.txt.j2 (required) and `name`.html.j2 (optional)."""
        text, html = self._templates.get(name) or self._load(name)
        return Rendered(text.render(**context), None if html is None else html.render(**context))

    def _load(self, name: str) -> tuple[Template, Template | None]:
        """The pair, kept with a missing HTML template too: Jinja looks for a missing one
        in every directory again each time it is asked."""
        text = self.env.get_template(f"{name}.txt.j2")
        try:
            html = self.env.get_template(f"{name}.html.j2")
        except TemplateNotFound:
            html = None
        self._templates[name] = (text, html)
        return text, html
