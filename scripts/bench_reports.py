"""Report benchmark: N realistic cases in a fresh SQLite file and a fresh PostgreSQL database;
time every report on each.

Run by hand:

    python scripts/bench_reports.py [--cases 1000000] [--repeat 3] [--skip-postgres]

The cases spread over four years: ~12 DUs, ~60 members (a few far busier than the rest),
office-hours arrivals, resolution times around the 5-day target with a long tail, delays
advised, feedback on about a third of closed cases, and the older two and a half years
imported from the "old CRM" (no chasers or routing recorded). They are bulk-loaded (COPY on
PostgreSQL, executemany on SQLite) with the report indexes built afterwards, as a restore
would; then each report runs `--repeat` times on a fresh connection through the same library
call the CLI makes. The target is under 3 s for every report, on both databases.
"""

from __future__ import annotations

import argparse
import math
import random
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, timedelta
from functools import cache
from pathlib import Path

from rich.console import Console
from rich.table import Table
from sqlalchemy import Connection, Engine, create_engine, text
from sqlalchemy.engine import make_url

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from mailbridge.cases.calendar import WorkingCalendar  # noqa: E402
from mailbridge.reports import caseload, performance, routing  # noqa: E402
from mailbridge.reports.pack import build_pack, render_pack  # noqa: E402
from mailbridge.store.db import make_engine, upgrade  # noqa: E402
from mailbridge.store.models import Case  # noqa: E402

END = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)  # "now" for the data and the reports
YEARS = 4
CUTOVER = datetime(2024, 6, 1, tzinfo=UTC)  # before this, cases came from the old CRM
UNITS = [
    ("Highways", 16),
    ("Street Scene", 14),
    ("Housing", 13),
    ("Waste & Recycling", 12),
    ("Parking", 8),
    ("Planning", 7),
    ("Environmental Health", 6),
    ("Parks & Open Spaces", 6),
    ("Council Tax", 5),
    ("Benefits", 5),
    ("Licensing", 4),
    ("Adult Social Care", 4),
]
SUBJECTS = [
    "Pothole on {s}",
    "Fly-tipping behind {s}",
    "Streetlight out on {s}",
    "Missed bin collection, {s}",
    "Damp and mould at a flat on {s}",
    "Parking on the verge at {s}",
    "Overgrown hedge on {s}",
    "Noise from a property on {s}",
]
STREETS = ["High Street", "Mill Lane", "Station Road", "Church Walk", "Park Avenue", "Elm Close"]
OPEN_STATUSES = [
    "awaiting_response",
    "escalated",
    "delay_advised",
    "work_scheduled",
    "clarification",
]
COLUMNS = [
    "reference",
    "status",
    "origin",
    "kind",
    "member",
    "delivery_unit",
    "officer",
    "subject",
    "received_at",
    "due_at",
    "first_response_at",
    "resolved_at",
    "delay_advised_at",
    "closed_at",
    "created_at",
    "updated_at",
    "feedback",
    "chasers_sent",
    "escalations",
    "first_delivery_unit",
    "first_assigned_at",
    "reroutes",
    "misroute_flag_seconds",
]


# ----- the data ------------------------------------------------------------------------------


def generate(n: int, seed: int = 6) -> list[tuple]:
    """n cases as tuples in COLUMNS order, oldest first."""
    rnd = random.Random(seed)
    cal = WorkingCalendar()

    @cache
    def due_from(start: date) -> datetime:
        return cal.at_cutoff(cal.add_working_days(start, 5))

    span = YEARS * 365 * 86400
    begin = END - timedelta(seconds=span)
    members = [f"cllr-{i:03d}" for i in range(60)]
    member_weights = [1 / (i + 1) ** 0.8 for i in range(60)]
    unit_names = [u for u, _ in UNITS]
    unit_weights = [w for _, w in UNITS]
    arrivals = sorted(begin + timedelta(seconds=_office_second(rnd, span)) for _ in range(n))
    seq: dict[int, int] = {}
    rows = []
    for received in arrivals:
        year = received.year
        seq[year] = seq.get(year, 0) + 1
        unit = rnd.choices(unit_names, unit_weights)[0]
        due = due_from(cal.clock_start(received))
        hours = rnd.lognormvariate(math.log(70), 0.9)  # median ~3 days, long tail
        resolved = received + timedelta(hours=hours)
        age = (END - received).days
        if resolved > END or (age < 90 and rnd.random() < 0.02):
            resolved = None
        delay = None
        if (resolved is None or resolved > due) and rnd.random() < 0.45:
            before = rnd.random() < 0.75
            delay = due - timedelta(hours=rnd.uniform(1, 30)) if before else due + timedelta(days=2)
            delay = max(delay, received + timedelta(minutes=30))
            if delay > END:
                delay = None
        first_response = min((t for t in (resolved, delay) if t is not None), default=None)
        closed = feedback = None
        if resolved is not None and rnd.random() < 0.85:
            closed = resolved + timedelta(days=rnd.uniform(1, 16))
            closed = closed if closed <= END else None
        if closed is not None and rnd.random() < 0.35:
            feedback = rnd.choices(["satisfied", "partly", "not_satisfied"], [60, 25, 15])[0]
        if closed:
            status = "closed"
        elif resolved:
            status = "resolved"
        else:
            status = rnd.choice(OPEN_STATUSES)
        imported = received < CUTOVER
        chasers = escalations = reroutes = flag = None
        first_unit = first_assigned = None
        if not imported:
            late = resolved is None or resolved > due
            chasers = (1 + (rnd.random() < 0.5)) if late else int(hours > 60)
            escalations = int(late and rnd.random() < 0.4)
            first_unit, first_assigned, reroutes = unit, received + timedelta(minutes=20), 0
            if rnd.random() < 0.09:
                reroutes = 1 + (rnd.random() < 0.1)
                first_unit = rnd.choice([u for u in unit_names if u != unit])
                flag = int(rnd.lognormvariate(math.log(5 * 3600), 1.0))
        kind = rnd.choices(
            ["members_enquiry", "service_request", "foi", "not_me"], [97, 1.5, 0.5, 1]
        )[0]
        rows.append(
            (
                f"ME-{year}-{seq[year]:06d}",
                status,
                "imported" if imported else rnd.choice(["direct", "direct", "cc", "forwarded"]),
                kind,
                rnd.choices(members, member_weights)[0],
                unit,
                f"o-{rnd.randrange(80):02d}",
                rnd.choice(SUBJECTS).format(s=rnd.choice(STREETS)),
                received,
                due,
                first_response,
                resolved,
                delay,
                closed,
                received,
                closed or resolved or received,
                feedback,
                chasers,
                escalations,
                first_unit,
                first_assigned,
                reroutes,
                flag,
            )
        )
    return rows


def _office_second(rnd: random.Random, span: int) -> int:
    """Seconds into the span, mostly in weekday office hours."""
    while True:
        s = rnd.randrange(span)
        moment = END - timedelta(seconds=span - s)
        hour = (moment.hour + (1 if 3 < moment.month < 11 else 0)) % 24
        weekend = moment.weekday() >= 5
        keep = 0.05 if weekend else (0.9 if 8 <= hour < 18 else 0.12)
        if rnd.random() < keep:
            return s


# ----- loading -------------------------------------------------------------------------------


def _sqlite_time(value):
    # The text SQLAlchemy's SQLite DateTime stores (UTCDateTime keeps UTC, drops the zone).
    if isinstance(value, datetime):
        return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
    return value


def load(engine: Engine, rows: list[tuple]) -> None:
    """Bulk-load the rows, building the case table's indexes after (as a restore would)."""
    indexes = list(Case.__table__.indexes)
    with engine.begin() as conn:
        for ix in indexes:
            ix.drop(conn)
    raw = engine.raw_connection()
    try:
        cols = ", ".join(COLUMNS)
        if engine.dialect.name == "postgresql":
            with raw.cursor() as cur, cur.copy(f'COPY "case" ({cols}) FROM STDIN') as copy:
                for row in rows:
                    copy.write_row(row)
        else:
            marks = ", ".join("?" for _ in COLUMNS)
            cur = raw.cursor()
            cur.execute("BEGIN")
            cur.executemany(
                f'INSERT INTO "case" ({cols}) VALUES ({marks})',
                ([_sqlite_time(v) for v in row] for row in rows),
            )
        raw.commit()
    finally:
        raw.close()
    with engine.begin() as conn:
        for ix in indexes:
            ix.create(conn)
    if engine.dialect.name == "postgresql":
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text('VACUUM ANALYZE "case"'))  # what autovacuum does after a load


# ----- the reports ---------------------------------------------------------------------------


def reports(cal: WorkingCalendar) -> list[tuple[str, Callable[[Connection], object]]]:
    last = END.date()
    first = date(last.year - YEARS, last.month, 1)
    year_ago = date(last.year - 1, last.month, 1)
    units = [u for u, _ in UNITS]
    known = {f"cllr-{i:03d}": (f"Cllr {i}", "") for i in range(60)}
    fy = last.year - 1 if last.month < 4 else last.year
    return [
        ("open --at", lambda c: performance.open_position(c, cal, last, units)),
        ("monthly (12 months)", lambda c: performance.monthly(c, cal, year_ago, last, "month")),
        ("monthly (4 years)", lambda c: performance.monthly(c, cal, first, last, "month")),
        ("monthly --by du (4 years)", lambda c: performance.monthly(c, cal, first, last, "du")),
        ("quarters --fy", lambda c: performance.quarters(c, cal, fy - 1, None, units)),
        ("status", lambda c: caseload.status_summary(c, cal, END, None, units)),
        ("members", lambda c: caseload.members(c, cal, known)),
        ("feedback", lambda c: caseload.feedback(c, cal, None, units)),
        ("routing", lambda c: routing.routing(c, cal, END, None, units)),
        (
            "pack (12 months, HTML)",
            lambda c: render_pack(
                build_pack(c, cal, END, year_ago, last, units=units, members=known)
            ),
        ),
    ]


def time_reports(engine: Engine, repeat: int) -> tuple[dict[str, list[float]], dict[str, str]]:
    """Seconds per run of each report, and what each produced (to compare the databases)."""
    times: dict[str, list[float]] = {}
    outputs: dict[str, str] = {}
    for name, run in reports(WorkingCalendar()):
        for _ in range(repeat):
            with engine.connect() as conn:
                t0 = time.perf_counter()
                result = run(conn)
                times.setdefault(name, []).append(time.perf_counter() - t0)
                conn.rollback()
        outputs[name] = result if isinstance(result, str) else repr(result.rows)
    return times, outputs


def fresh_postgres(server: str) -> tuple[str, Callable[[], None]]:
    name = f"mailbridge_bench_{uuid.uuid4().hex[:8]}"
    admin = create_engine(server, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))

    def drop() -> None:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()

    return make_url(server).set(database=name).render_as_string(hide_password=False), drop


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--sqlite", default=None, help="SQLite file (default: a temp file)")
    parser.add_argument(
        "--postgres",
        default="postgresql+psycopg://postgres@127.0.0.1:5432/test",
        help="a PostgreSQL server URL; a fresh database is created on it and dropped after",
    )
    parser.add_argument("--skip-postgres", action="store_true")
    parser.add_argument("--skip-sqlite", action="store_true")
    args = parser.parse_args()
    console = Console()

    t0 = time.perf_counter()
    rows = generate(args.cases)
    console.print(f"generated {len(rows):,} cases in {time.perf_counter() - t0:.1f} s")
    results: dict[str, dict[str, list[float]]] = {}
    outputs: dict[str, dict[str, str]] = {}
    targets: list[tuple[str, Iterator[tuple[str, Callable[[], None]]]]] = []
    if not args.skip_sqlite:
        tmp = tempfile.TemporaryDirectory(prefix="mailbridge-bench-")
        path = args.sqlite or f"{tmp.name}/bench.db"
        Path(path).unlink(missing_ok=True)
        targets.append(("SQLite", iter([(f"sqlite:///{path}", tmp.cleanup)])))
    if not args.skip_postgres:
        targets.append(("PostgreSQL", iter([fresh_postgres(args.postgres)])))
    for label, (url, cleanup) in ((label, next(it)) for label, it in targets):
        try:
            upgrade(url)
            engine = make_engine(url)
            t0 = time.perf_counter()
            load(engine, rows)
            console.print(f"{label}: loaded in {time.perf_counter() - t0:.1f} s")
            results[label], outputs[label] = time_reports(engine, args.repeat)
            engine.dispose()
        finally:
            cleanup()

    table = Table(
        title=f"Reports over {len(rows):,} cases (seconds: best / worst of {args.repeat})"
    )
    table.add_column("report")
    for label in results:
        table.add_column(label, justify="right")
    for name in next(iter(results.values()), {}):
        cells = []
        for label in results:
            times = results[label][name]
            flag = "" if max(times) < 3 else " [red]slow[/red]"
            cells.append(f"{min(times):.2f} / {max(times):.2f}{flag}")
        table.add_row(name, *cells)
    console.print(table)
    if len(outputs) == 2:
        first, second = outputs.values()
        differ = [name for name in first if first[name] != second[name]]
        if differ:
            console.print(f"[red]SQLite and PostgreSQL disagree on: {', '.join(differ)}[/red]")
        else:
            console.print("SQLite and PostgreSQL agree on every figure of every report.")


if __name__ == "__main__":
    main()
