"""Rendering: the same text however often a template, a date or a value is asked for."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone

import pytest
from jinja2 import StrictUndefined, Undefined
from jinja2.sandbox import SandboxedEnvironment

from mailbridge.outbound.render import Renderer, long_date

pytestmark = pytest.mark.unit


def test_long_date_names_the_day_where_the_value_is_not_the_instant():
    utc = datetime(2026, 11, 23, 23, 30, tzinfo=UTC)
    an_hour_east = utc.astimezone(timezone(timedelta(hours=1)))  # the same instant, the next day
    assert utc == an_hour_east
    assert long_date(utc) == "Monday 23 November"
    assert long_date(an_hour_east) == "Tuesday 24 November"
    assert long_date(date(2026, 12, 4)) == "Friday 4 December"


def test_a_template_without_an_html_part_renders_text_only_every_time():
    renderer = Renderer()
    context = {"mailbox": "enquiries@council.example", "help_lines": [], "case": None}
    first = renderer.render("help", rejected=[], **context)
    assert first.html is None and first == renderer.render("help", rejected=[], **context)


def test_dict_keys_read_as_the_stock_sandbox_reads_them():
    ours, stock = Renderer().env, SandboxedEnvironment(undefined=StrictUndefined)
    case = {"due": date(2026, 12, 4), "items": "a key dict.items hides", "get": 1}
    for name in ("due", "items", "get"):
        assert ours.getattr(case, name) == stock.getattr(case, name)
    for name in ("missing", "__class__"):
        assert isinstance(ours.getattr(case, name), Undefined)
        assert isinstance(stock.getattr(case, name), Undefined)
