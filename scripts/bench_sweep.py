"""Sweep benchmark: one clock sweep over N open cases, on SQLite and on PostgreSQL.

Run by hand:

    python scripts/bench_sweep.py [--cases 100000] [--due 1000] [--skip-postgres]

N open cases (received over the last six weeks, every open status, the example directory's
units and officers) are bulk-loaded with Core inserts, each with the next_action_at its plan
gives at 16:55 on Friday 20 November 2026, as the daemon's last sweep would have left it.
Then three sweeps, each timed through the library call the daemon makes:

- idle: at 16:56, nothing is due; the index on next_action_at means it reads nothing;
- due: at 17:01, `--due` cases (received on Tuesday) are at working day 3: their chasers are
  composed and queued, each with its timeline entries, counted on the case;
- every case touched: all N set due (as after migration 0004's backfill, or a mass change),
  swept at 17:02: N plans worked out and moved on, nothing sent (those chasers are queued).

The target is under 2 s for a sweep over 100,000 open cases.
"""

from __future__ import annotations

import argparse
import random
import resource
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from rich.console import Console
from rich.table import Table
from sqlalchemy import update

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "scripts"))  # bench_reports: the throwaway PostgreSQL database

from bench_reports import fresh_postgres  # noqa: E402

from mailbridge.config import load_settings  # noqa: E402
from mailbridge.directory import load_directory  # noqa: E402
from mailbridge.ingest.pipeline import PipelineContext  # noqa: E402
from mailbridge.schedule.plan import CaseClock, plan_case  # noqa: E402
from mailbridge.schedule.policy import ClockPolicy  # noqa: E402
from mailbridge.schedule.sweep import sweep  # noqa: E402
from mailbridge.store.db import make_engine, upgrade  # noqa: E402
from mailbridge.store.models import Case  # noqa: E402

LAST_SWEEP = datetime(2026, 11, 20, 16, 55, tzinfo=UTC)  # Friday; GMT, so council time too
IDLE, DUE, TOUCHED = (LAST_SWEEP + timedelta(minutes=m) for m in (1, 6, 7))
TUESDAY = datetime(2026, 11, 17, 10, 0, tzinfo=UTC)  # its chaser falls due on Friday at 17:00
STATUSES = [  # (status, weight) of the cases that are not due
    ("awaiting_response", 50),
    ("delay_advised", 12),
    ("work_scheduled", 10),
    ("triage", 3),
    ("clarification", 5),
    ("resolved", 20),
]


def generate(n: int, due: int, settings, seed: int = 5) -> list[dict]:
    """The cases, with next_action_at as the last sweep left them; the first `due` chase now.

    The others are drawn again until nothing of theirs falls due before the last sweep of the
    benchmark (a case drawn with a slot already past would have had its email long ago).
    """
    rnd = random.Random(seed)
    directory, _ = load_directory(REPO / "config" / "directory.example.toml")
    calendar = PipelineContext.from_settings(settings, directory).calendar
    policy = ClockPolicy.from_settings(settings.clock)
    units = [(u.name, u.leads[0]) for u in directory.delivery_units if u.leads]
    members = [(m.id, m.addresses[0]) for m in directory.members]
    statuses, weights = zip(*STATUSES, strict=True)
    today = calendar.local(LAST_SWEEP).date()
    rows = []
    while len(rows) < n:
        i = len(rows)
        unit, officer = rnd.choice(units)
        member, address = rnd.choice(members)
        status = "awaiting_response" if i < due else rnd.choices(statuses, weights)[0]
        received = TUESDAY if i < due else LAST_SWEEP - timedelta(hours=rnd.randrange(1, 1000))
        row = {
            "reference": f"ME-2026-{i + 1:06d}",
            "status": status,
            "origin": "direct",
            "kind": "members_enquiry",
            "member": member,
            "member_address": address,
            "delivery_unit": unit if status != "triage" else None,
            "officer": officer if status != "triage" else None,
            "subject": f"Enquiry {i + 1}",
            "received_at": received,
            "due_at": calendar.due_at(received, 5),
            "created_at": received,
            "updated_at": received,
            "resolved_at": received + timedelta(hours=rnd.randrange(1, 100))
            if status == "resolved"
            else None,
            "feedback_at": None,
            "member_replied_at": None,
            "target_date": today + timedelta(days=rnd.randrange(3, 30)),
            "scheduled_for": today + timedelta(days=rnd.randrange(3, 30)),
        }
        snapshot = CaseClock(**{name: row[name] for name in CaseClock.__dataclass_fields__})
        sla = policy.for_unit(row["delivery_unit"])
        if i >= due and plan_case(snapshot, calendar, sla, TOUCHED).actions:
            continue  # draw again
        row["next_action_at"] = plan_case(snapshot, calendar, sla, LAST_SWEEP).next_at
        rows.append(row)
    return rows


def seed(engine, rows: list[dict]) -> float:
    t0 = time.perf_counter()
    with engine.begin() as conn:
        for i in range(0, len(rows), 10_000):
            conn.execute(Case.__table__.insert(), rows[i : i + 10_000])
    return time.perf_counter() - t0


def timed(fn: Callable[[], object]) -> tuple[float, object]:
    t0 = time.perf_counter()
    result = fn()
    return time.perf_counter() - t0, result


def run(url: str, rows: list[dict], settings) -> dict[str, str]:
    upgrade(url)
    engine = make_engine(url)
    directory, _ = load_directory(REPO / "config" / "directory.example.toml")
    mailer = PipelineContext.from_settings(settings, directory).mailer
    policy = ClockPolicy.from_settings(settings.clock)
    try:
        seeded = seed(engine, rows)
        idle, idle_stats = timed(lambda: sweep(engine, mailer, policy, IDLE))
        due, due_stats = timed(lambda: sweep(engine, mailer, policy, DUE))
        with engine.begin() as conn:
            conn.execute(update(Case).values(next_action_at=TOUCHED))
        touched, touched_stats = timed(lambda: sweep(engine, mailer, policy, TOUCHED))
    finally:
        engine.dispose()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    return {
        "seed": f"{seeded:.1f} s",
        "idle sweep": f"{idle * 1000:.1f} ms ({idle_stats.cases} cases)",
        "due sweep": f"{due:.2f} s ({sum(due_stats.queued.values())} emails,"
        f" {due * 1000 / max(1, sum(due_stats.queued.values())):.1f} ms each)",
        "all touched": f"{touched:.2f} s ({touched_stats.cases:,} cases,"
        f" {sum(touched_stats.queued.values())} emails)",
        "peak RSS": f"{peak:.0f} MB",
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=100_000)
    parser.add_argument("--due", type=int, default=1_000, help="cases whose chaser is due")
    parser.add_argument(
        "--postgres",
        default="postgresql+psycopg://postgres@127.0.0.1:5432/test",
        help="a PostgreSQL server URL; a fresh database is created on it and dropped after",
    )
    parser.add_argument("--skip-postgres", action="store_true")
    parser.add_argument("--skip-sqlite", action="store_true")
    args = parser.parse_args()
    console = Console()
    settings = load_settings(None, {"MAILBRIDGE_ADDRESS": "enquiries@council.example.gov.uk"})
    t0 = time.perf_counter()
    rows = generate(args.cases, args.due, settings)
    console.print(f"generated {len(rows):,} open cases in {time.perf_counter() - t0:.1f} s")
    results = {}
    if not args.skip_sqlite:
        with tempfile.TemporaryDirectory(prefix="mailbridge-bench-") as tmp:
            results["SQLite"] = run(f"sqlite:///{tmp}/bench.db", rows, settings)
    if not args.skip_postgres:
        url, drop = fresh_postgres(args.postgres)
        try:
            results["PostgreSQL"] = run(url, rows, settings)
        finally:
            drop()
    table = Table(title=f"One sweep over {len(rows):,} open cases ({args.due:,} due)")
    table.add_column("")
    for label in results:
        table.add_column(label, justify="right")
    for measure in next(iter(results.values()), {}):
        table.add_row(measure, *(results[label][measure] for label in results))
    console.print(table)


if __name__ == "__main__":
    main()
