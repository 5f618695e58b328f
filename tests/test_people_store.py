"""The directory in the database: loaded and reloaded on SQLite and PostgreSQL, never
forgetting what mail taught, keeping people who left; `directory show` and `clear`."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from pathlib import Path

from sqlalchemy import select
from typer.testing import CliRunner

from mailbridge.cli import app
from mailbridge.directory import Learnt, load_directory
from mailbridge.store.db import insert, session
from mailbridge.store.models import DeliveryUnitRecord, MemberRecord, OfficerRecord
from mailbridge.store.people import learnt, load_people, mark_absent, mark_undeliverable
from tests.conftest import TEST_DIRECTORY, settings_env

NOW = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)
LATER = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)
COUNCIL = TEST_DIRECTORY.read_text(encoding="utf-8")


def directory_from(tmp_path: Path, text: str = COUNCIL):
    path = tmp_path / "directory.toml"
    path.write_text(text, encoding="utf-8")
    directory, problems = load_directory(path)
    assert [p for p in problems if p.severity == "error"] == []
    return directory


def load(engine, directory, now=NOW):
    with session(engine) as s:
        loaded = load_people(s, directory, now)
        s.commit()
    return loaded


def stored(engine, model, key="id"):
    with session(engine) as s:
        return {getattr(r, key): r for r in s.exec(select(model)).scalars()}


def without_officer(text: str, ident: str) -> str:
    """The file with one officer's [[officers]] entry taken out."""
    head, _, rest = text.partition(f'[[officers]]\nid = "{ident}"\n')
    _, _, tail = rest.partition("\n\n")
    return head + tail


def test_a_load_stores_every_member_unit_and_officer_from_the_file(engine, tmp_path):
    loaded = load(engine, directory_from(tmp_path))

    assert (loaded.members, loaded.delivery_units, loaded.officers, loaded.gone) == (4, 4, 7, 0)
    patel = stored(engine, MemberRecord)["cllr-patel"]
    assert (patel.ward, patel.party, patel.historical) == ("Riverside", "Labour", False)
    assert patel.addresses == ["asha.patel@council.example", "asha.patel.ward@gmail.example"]
    housing = stored(engine, DeliveryUnitRecord, "name")["Housing"]
    assert (housing.confidential, housing.leads) == (True, ["o-khan"])
    singh = stored(engine, OfficerRecord)["o-singh"]
    assert (singh.delivery_unit, singh.manager, singh.deputy, singh.active) == (
        "Street Scene",
        "o-evans",
        "o-lee",
        True,
    )


def test_a_reload_updates_the_files_columns_and_keeps_what_mail_taught(engine, tmp_path):
    load(engine, directory_from(tmp_path))
    with session(engine) as s:
        mark_undeliverable(s, "o-singh", NOW, "dev.singh@council.example: 5.1.1")
        mark_absent(s, "o-walsh", date(2026, 12, 6), NOW)
        s.commit()

    changed = COUNCIL.replace('deputy = "o-lee"', 'deputy = "o-evans"')
    load(engine, directory_from(tmp_path, changed), LATER)

    officers = stored(engine, OfficerRecord)
    assert officers["o-singh"].deputy == "o-evans"
    assert officers["o-singh"].undeliverable_at == NOW
    assert officers["o-singh"].undeliverable_reason == "dev.singh@council.example: 5.1.1"
    assert officers["o-walsh"].reported_absent_until == date(2026, 12, 6)
    assert officers["o-singh"].created_at == NOW and officers["o-singh"].updated_at == LATER
    with session(engine) as s:
        assert learnt(s) == {
            "o-singh": Learnt(None, NOW, "dev.singh@council.example: 5.1.1"),
            "o-walsh": Learnt(date(2026, 12, 6), None, ""),
        }
        s.rollback()


def test_a_second_bounce_keeps_the_time_of_the_first(engine, tmp_path):
    load(engine, directory_from(tmp_path))
    with session(engine) as s:
        mark_undeliverable(s, "o-singh", NOW, "first")
        mark_undeliverable(s, "o-singh", LATER, "second")
        s.commit()

    singh = stored(engine, OfficerRecord)["o-singh"]
    assert (singh.undeliverable_at, singh.undeliverable_reason) == (NOW, "second")


def test_people_gone_from_the_file_are_kept_as_historical_and_come_back_live(engine, tmp_path):
    load(engine, directory_from(tmp_path))
    gone = (
        without_officer(COUNCIL, "o-hale")
        .replace('wards = { "Riverside" = "o-ahmed", "Hillside" = "o-hale" }', "")
        .replace('leads = ["o-ahmed", "o-hale"]', 'leads = ["o-ahmed"]')
        .replace('deputy = "o-hale"', "")
    )

    loaded = load(engine, directory_from(tmp_path, gone), LATER)

    hale = stored(engine, OfficerRecord)["o-hale"]
    assert loaded.gone == 1
    assert (hale.historical, hale.active, hale.name, hale.updated_at) == (
        True,
        False,
        "Tom Hale",
        LATER,
    )
    load(engine, directory_from(tmp_path), LATER)
    hale = stored(engine, OfficerRecord)["o-hale"]
    assert (hale.historical, hale.active) == (False, True)


def test_a_historical_row_from_imported_history_becomes_live_when_the_file_names_it(
    engine, tmp_path
):
    with engine.begin() as conn:  # as `import cases` records a member and a unit it met
        conn.execute(
            insert(conn, MemberRecord.__table__),
            {"id": "cllr-dunn", "name": "cllr-dunn", "ward": "", "party": "",
             "historical": True, "created_at": NOW},
        )  # fmt: skip
        conn.execute(
            insert(conn, DeliveryUnitRecord.__table__),
            [
                {"name": "Housing", "confidential": False, "historical": True, "created_at": NOW},
                {"name": "Old Parks", "confidential": False, "historical": True,
                 "created_at": NOW},
            ],
        )  # fmt: skip

    loaded = load(engine, directory_from(tmp_path), LATER)

    dunn = stored(engine, MemberRecord)["cllr-dunn"]
    assert (dunn.historical, dunn.name, dunn.ward, dunn.created_at) == (
        False,
        "Cllr Rob Dunn",
        "Hillside",
        NOW,
    )
    units = stored(engine, DeliveryUnitRecord, "name")
    assert (units["Housing"].historical, units["Housing"].confidential) == (False, True)
    assert units["Old Parks"].historical is True  # still known only from history
    assert loaded.gone == 0  # it was historical already


# ----- `mailbridge directory show` and `clear` -------------------------------------------------


def run(db_url, tmp_path, *args):
    env = settings_env(db_url, f"maildir://{tmp_path / 'inbox'}", COLUMNS="200")
    env["MAILBRIDGE_DIRECTORY"] = str(tmp_path / "directory.toml")
    return CliRunner().invoke(app, ["directory", *args], env=env)


def test_show_lists_the_file_with_what_mail_taught_and_who_left(engine, db_url, tmp_path):
    load(engine, directory_from(tmp_path))
    with session(engine) as s:
        mark_undeliverable(s, "o-singh", NOW, "dev.singh@council.example: 5.1.1")
        mark_absent(s, "o-walsh", date(2026, 12, 6), NOW)
        s.commit()
    left = without_officer(COUNCIL, "o-lee").replace('deputy = "o-lee"', 'deputy = "o-evans"')
    load(engine, directory_from(tmp_path, left))

    result = run(db_url, tmp_path, "show", "--format", "json")

    assert result.exit_code == 0, result.output
    shown = json.loads(result.stdout)
    officers = {o["id"]: o for o in shown["officers"]}
    assert officers["o-singh"]["undeliverable_reason"] == "dev.singh@council.example: 5.1.1"
    assert officers["o-singh"]["undeliverable_at"].startswith("2026-11-23 10:00")
    assert officers["o-walsh"]["reported_absent_until"] == "2026-12-06"
    assert (officers["o-singh"]["deputy"], officers["o-singh"]["status"]) == ("o-evans", "live")
    assert (officers["o-lee"]["status"], officers["o-lee"]["active"]) == ("historical", False)
    units = {u["name"]: u for u in shown["delivery_units"]}
    assert units["Grounds Maintenance"]["wards"] == ["Riverside=o-ahmed", "Hillside=o-hale"]
    assert units["Highways"]["patterns"] == ["pot ?holes?", "street ?lights?"]
    assert {m["id"] for m in shown["members"]} >= {"cllr-patel", "cllr-dunn"}
    table = run(db_url, tmp_path, "show")
    assert table.exit_code == 0 and "Grounds Maintenance" in table.stdout


def test_clear_forgets_a_bounce_and_an_absence_and_says_what_it_cleared(engine, db_url, tmp_path):
    load(engine, directory_from(tmp_path))
    with session(engine) as s:
        mark_undeliverable(s, "o-singh", NOW, "dev.singh@council.example: 5.1.1")
        mark_absent(s, "o-singh", date(2026, 12, 6), NOW)
        s.commit()

    result = run(db_url, tmp_path, "clear", "o-singh")

    assert result.exit_code == 0, result.output
    assert "undeliverable since 2026-11-23 (dev.singh@council.example: 5.1.1)" in result.stdout
    assert "away until 2026-12-06" in result.stdout
    with session(engine) as s:
        assert learnt(s) == {}
        s.rollback()
    assert "nothing to clear" in run(db_url, tmp_path, "clear", "o-singh").stdout
    unknown = run(db_url, tmp_path, "clear", "o-nobody")
    assert unknown.exit_code == 2 and "no officer 'o-nobody'" in unknown.stderr
