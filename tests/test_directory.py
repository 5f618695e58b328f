"""The directory: members, DUs and officers from TOML, looked up by address, every problem named."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from mailbridge.cli import app
from mailbridge.directory import EMPTY, Learnt, load_directory

pytestmark = pytest.mark.unit

REPO = Path(__file__).resolve().parents[1]
EXAMPLE_DIRECTORY = REPO / "config" / "directory.example.toml"

# A small valid council that each problem test breaks in one place.
COUNCIL = """
[[members]]
id = "cllr-patel"
name = "Cllr Asha Patel"
addresses = ["Asha.Patel@council.example.gov.uk", "cllr.patel@example.org.uk"]
ward = "Riverside"

[[delivery_units]]
name = "Street Scene"
leads = ["o-singh"]
escalation_manager = "o-evans"
keywords = ["litter"]

[[officers]]
id = "o-evans"
name = "Rhian Evans"
addresses = ["rhian.evans@council.example.gov.uk"]
delivery_unit = "Street Scene"

[[officers]]
id = "o-singh"
name = "Harpreet Singh"
addresses = ["harpreet.singh@council.example.gov.uk"]
delivery_unit = "street scene"
manager = "o-evans"
deputy = "o-evans"
absent_until = 2026-08-21
"""


def load(tmp_path: Path, text: str):
    path = tmp_path / "directory.toml"
    path.write_text(text, encoding="utf-8")
    directory, problems = load_directory(path)
    return directory, problems, str(path)


def keyed(problems) -> dict[str, str]:
    return {p.key: p.message for p in problems}


# ----- reading and looking up ----------------------------------------------------------------


def test_the_example_directory_loads_with_no_problems() -> None:
    directory, problems = load_directory(EXAMPLE_DIRECTORY)

    assert problems == []
    assert 4 <= len(directory.members) <= 5
    assert 3 <= len(directory.delivery_units) <= 4
    assert 6 <= len(directory.officers) <= 8
    assert any(u.confidential for u in directory.delivery_units)
    assert any(not o.active for o in directory.officers)
    assert any(o.absent_until for o in directory.officers)
    assert all(len(m.addresses) >= 1 for m in directory.members)
    assert any(len(m.addresses) > 1 for m in directory.members)


def test_a_member_with_several_addresses_is_found_by_each_of_them(tmp_path: Path) -> None:
    directory, problems, _ = load(tmp_path, COUNCIL)

    assert problems == []
    by_work = directory.member_by_address("asha.patel@council.example.gov.uk")
    by_home = directory.member_by_address("cllr.patel@example.org.uk")
    assert by_work is not None and by_work is by_home
    assert by_work.id == "cllr-patel"
    assert by_work.ward == "Riverside"


def test_addresses_and_du_names_are_looked_up_case_insensitively(tmp_path: Path) -> None:
    directory, _, _ = load(tmp_path, COUNCIL)

    assert directory.member_by_address("ASHA.PATEL@Council.Example.GOV.UK").id == "cllr-patel"
    assert directory.officer_by_address("Harpreet.Singh@COUNCIL.example.gov.uk").id == "o-singh"
    assert directory.delivery_unit("STREET SCENE").name == "Street Scene"
    assert directory.member("cllr-patel").name == "Cllr Asha Patel"
    assert directory.officer("o-singh").manager == "o-evans"


def test_an_unknown_address_is_neither_member_nor_officer(tmp_path: Path) -> None:
    directory, _, _ = load(tmp_path, COUNCIL)

    assert directory.member_by_address("resident@example.com") is None
    assert directory.officer_by_address("asha.patel@council.example.gov.uk") is None


def test_dates_flags_and_defaults_come_through(tmp_path: Path) -> None:
    directory, _, _ = load(
        tmp_path,
        COUNCIL
        + """
[[delivery_units]]
name = "Housing"
confidential = true
escalation_reviewed = "2026-02-02"
""",
    )

    singh = directory.officer("o-singh")
    assert singh.absent_until == date(2026, 8, 21)
    assert singh.active is True
    housing = directory.delivery_unit("housing")
    assert housing.confidential is True
    assert housing.escalation_reviewed == date(2026, 2, 2)
    assert directory.member("cllr-patel").digest is False


def test_a_person_without_a_name_is_named_by_their_id(tmp_path: Path) -> None:
    directory, problems, _ = load(tmp_path, '[[members]]\nid = "cllr-x"\naddresses = ["x@e.uk"]\n')

    assert problems == []
    assert directory.member("cllr-x").name == "cllr-x"


def test_no_directory_file_is_an_empty_directory() -> None:
    assert load_directory(None) == (EMPTY, [])


# ----- problems, each with the file and the entry --------------------------------------------


@pytest.mark.parametrize(
    ("old", "new", "key", "message"),
    [
        (
            '\nmanager = "o-evans"',
            '\nmanager = "o-nobody"',
            "officers[o-singh].manager",
            "unknown officer 'o-nobody'",
        ),
        (
            'deputy = "o-evans"',
            'deputy = "o-nobody"',
            "officers[o-singh].deputy",
            "unknown officer 'o-nobody'",
        ),
        (
            'leads = ["o-singh"]',
            'leads = ["o-singh", "o-nobody"]',
            "delivery_units[Street Scene].leads",
            "unknown officer 'o-nobody'",
        ),
        (
            'escalation_manager = "o-evans"',
            'escalation_manager = "o-nobody"',
            "delivery_units[Street Scene].escalation_manager",
            "unknown officer 'o-nobody'",
        ),
        (
            'delivery_unit = "street scene"',
            'delivery_unit = "Parks"',
            "officers[o-singh].delivery_unit",
            "unknown delivery unit 'Parks'",
        ),
        (
            'addresses = ["harpreet.singh@council.example.gov.uk"]',
            'addresses = ["Asha.Patel@council.example.gov.uk"]',
            "officers[o-singh].addresses",
            "asha.patel@council.example.gov.uk is also listed for members[cllr-patel]",
        ),
        (
            'ward = "Riverside"',
            'ward = "Riverside"\nwrd = "Old Town"',
            "members[cllr-patel].wrd",
            "unknown field",
        ),
        (
            None,
            '[[officers]]\nname = "No Id"\naddresses = ["no.id@council.example.gov.uk"]',
            "officers[2]",
            "missing 'id' (a non-empty string) for 'No Id'",
        ),
        (None, '[[delivery_units]]\ntitle = "Parks"', "delivery_units[1]", "missing 'name'"),
        (
            None,
            '[[officers]]\nid = "O-Singh"\naddresses = ["h.s@council.example.gov.uk"]',
            "officers[O-Singh]",
            "duplicate id 'O-Singh'",
        ),
        (
            'addresses = ["harpreet.singh@council.example.gov.uk"]',
            'addresses = "harpreet.singh@council.example.gov.uk"',
            "officers[o-singh].addresses",
            "expected a list of strings",
        ),
        (
            'addresses = ["harpreet.singh@council.example.gov.uk"]',
            "addresses = []",
            "officers[o-singh].addresses",
            "at least one address",
        ),
        (
            'addresses = ["harpreet.singh@council.example.gov.uk"]\n',
            "",
            "officers[o-singh].addresses",
            "at least one address",
        ),
        (
            'addresses = ["harpreet.singh@council.example.gov.uk"]',
            'addresses = ["H Singh"]',
            "officers[o-singh].addresses",
            "not an email address: 'H Singh'",
        ),
        (
            "absent_until = 2026-08-21",
            'absent_until = "next week"',
            "officers[o-singh].absent_until",
            "expected a date",
        ),
        (
            "absent_until = 2026-08-21",
            "absent_until = 2026-08-21T09:00:00",
            "officers[o-singh].absent_until",
            "expected a date",
        ),
        (
            "absent_until = 2026-08-21",
            'active = "no"',
            "officers[o-singh].active",
            "expected true or false",
        ),
        ('ward = "Riverside"', "ward = 3", "members[cllr-patel].ward", "expected a string"),
        (
            'keywords = ["litter"]',
            "keywords = ['litter', '(unclosed']",
            "delivery_units[Street Scene].keywords",
            "",
        ),  # keywords are literal, always fine
        (
            'keywords = ["litter"]',
            "patterns = ['(unclosed']",
            "delivery_units[Street Scene].patterns",
            "bad regular expression '(unclosed'",
        ),
    ],
)
def test_each_problem_names_the_file_and_the_entry(tmp_path: Path, old, new, key, message) -> None:
    if old is None:  # a new entry at the end
        text = f"{COUNCIL}\n{new}\n"
    else:
        assert COUNCIL.count(old) == 1
        text = COUNCIL.replace(old, new)
    _, problems, where = load(tmp_path, text)

    if key.endswith(".keywords"):
        assert problems == []
        return
    found = keyed(problems)
    assert list(found) == [key], problems
    assert message in found[key]
    assert all(p.where == where and p.severity == "error" for p in problems)


def test_a_duplicate_address_between_two_officers_is_reported_once(tmp_path: Path) -> None:
    text = COUNCIL.replace(
        'addresses = ["rhian.evans@council.example.gov.uk"]',
        'addresses = ["rhian.evans@council.example.gov.uk", '
        '"Harpreet.Singh@council.example.gov.uk"]',
    )

    _, problems, _ = load(tmp_path, text)

    assert keyed(problems) == {
        "officers[o-singh].addresses": (
            "harpreet.singh@council.example.gov.uk is also listed for officers[o-evans]"
        )
    }


def test_one_bad_field_is_reported_once_and_not_again_wherever_the_entry_is_named(
    tmp_path: Path,
) -> None:
    text = COUNCIL.replace('id = "o-evans"\n', 'id = "o-evans"\nactive = "yes"\n')

    directory, problems, _ = load(tmp_path, text)

    # o-evans is named as escalation manager, manager and deputy: none of those is "unknown".
    assert list(keyed(problems)) == ["officers[o-evans].active"]
    assert directory.officer("o-evans") is None  # a bad entry is not used


def test_every_problem_in_the_file_is_reported_at_once(tmp_path: Path) -> None:
    text = (
        COUNCIL.replace('\nmanager = "o-evans"', '\nmanager = "o-gone"')
        .replace('ward = "Riverside"', 'wards = ["Riverside"]')
        .replace('leads = ["o-singh"]', 'leads = ["o-vacant"]')
    ) + "\n[[contractors]]\n"

    _, problems, _ = load(tmp_path, text)

    assert set(keyed(problems)) == {
        "contractors",
        "members[cllr-patel].wards",
        "officers[o-singh].manager",
        "delivery_units[Street Scene].leads",
    }


def test_a_section_that_is_a_table_not_an_array_is_a_problem(tmp_path: Path) -> None:
    _, problems, _ = load(tmp_path, '[members]\nid = "cllr-x"\n')

    assert keyed(problems) == {"members": "must be an array of tables: [[members]]"}


@pytest.mark.parametrize("content", [b"[[members]\nid = 1", b"\xff\xfe"])
def test_a_file_that_is_not_toml_is_one_problem_not_a_crash(tmp_path: Path, content) -> None:
    path = tmp_path / "directory.toml"
    path.write_bytes(content)

    directory, problems = load_directory(path)

    assert directory == EMPTY
    assert [(p.where, p.key) for p in problems] == [(str(path), "-")]
    assert "not valid TOML" in problems[0].message


def test_a_missing_file_or_a_folder_is_one_problem_not_a_crash(tmp_path: Path) -> None:
    for path in (tmp_path / "missing.toml", tmp_path):
        directory, problems = load_directory(path)
        assert directory == EMPTY
        assert [(p.where, p.key, p.severity) for p in problems] == [(str(path), "-", "error")]


# ----- wards, leads that have left, and reviews ----------------------------------------------


def test_a_unit_can_split_by_ward_each_ward_to_an_officer(tmp_path: Path) -> None:
    text = COUNCIL.replace(
        'keywords = ["litter"]', 'keywords = ["litter"]\nwards = { "riverside" = "o-evans" }'
    )

    directory, problems, _ = load(tmp_path, text)

    assert problems == []
    unit = directory.delivery_unit("Street Scene")
    assert unit.for_ward("Riverside") == ("riverside", "o-evans")
    assert unit.for_ward("Old Town") is None and unit.for_ward("") is None


@pytest.mark.parametrize(
    ("wards", "message"),
    [
        ('{ "Riverside" = "o-ghost" }', "unknown officer 'o-ghost' for ward 'Riverside'"),
        ('["Riverside"]', "expected ward = officer id pairs"),
        ('{ "Riverside" = 3 }', "expected ward = officer id pairs"),
    ],
)
def test_a_ward_split_names_officers_that_exist(tmp_path: Path, wards, message) -> None:
    text = COUNCIL.replace('keywords = ["litter"]', f'keywords = ["litter"]\nwards = {wards}')

    _, problems, _ = load(tmp_path, text)

    assert message in keyed(problems)["delivery_units[Street Scene].wards"]


@pytest.mark.parametrize(
    "change",
    [
        ('id = "o-singh"\n', 'id = "o-singh"\nactive = false\n'),
        ('leads = ["o-singh"]\n', "leads = []\n"),
        ('leads = ["o-singh"]\n', ""),
    ],
)
def test_a_unit_whose_leads_have_all_left_is_a_warning_that_never_blocks_a_reload(
    tmp_path: Path, change
) -> None:
    _, problems, _ = load(tmp_path, COUNCIL.replace(*change))

    assert keyed(problems) == {
        "delivery_units[Street Scene].leads": "no active lead: its new cases will wait in triage"
    }
    assert [p.severity for p in problems] == ["warning"]


def test_an_absent_lead_or_an_active_ward_officer_is_enough(tmp_path: Path) -> None:
    text = COUNCIL.replace('id = "o-singh"\n', 'id = "o-singh"\nactive = false\n').replace(
        'keywords = ["litter"]', 'keywords = ["litter"]\nwards = { "Riverside" = "o-evans" }'
    )

    assert load(tmp_path, text)[1] == []  # o-singh's absent_until does not count either


@pytest.mark.parametrize(
    ("reviewed", "warning"),
    [
        ("2025-11-23", None),  # exactly twelve months ago
        ("2025-11-22", "escalation list last reviewed 2025-11-22, over 12 months ago"),
        (None, "escalation list has never been reviewed (set escalation_reviewed)"),
    ],
)
def test_an_escalation_list_not_reviewed_in_twelve_months_is_a_warning(
    tmp_path: Path, reviewed, warning
) -> None:
    line = f"escalation_reviewed = {reviewed}\n" if reviewed else ""
    text = COUNCIL.replace('keywords = ["litter"]\n', f'keywords = ["litter"]\n{line}')
    path = tmp_path / "directory.toml"
    path.write_text(text, encoding="utf-8")

    assert load_directory(path)[1] == []  # without a date, nothing to judge against
    _, problems = load_directory(path, date(2026, 11, 23))

    found = [(p.key, p.severity, p.message) for p in problems]
    expected = [("delivery_units[Street Scene].escalation_reviewed", "warning", warning)]
    assert found == (expected if warning else [])


def test_a_leap_day_review_is_judged_against_the_last_day_of_february(tmp_path: Path) -> None:
    text = COUNCIL.replace(
        'keywords = ["litter"]\n', 'keywords = ["litter"]\nescalation_reviewed = 2027-02-28\n'
    )
    path = tmp_path / "directory.toml"
    path.write_text(text, encoding="utf-8")

    assert load_directory(path, date(2028, 2, 29))[1] == []
    assert len(load_directory(path, date(2028, 3, 1))[1]) == 1


def test_a_ward_split_for_a_ward_no_member_sits_in_is_a_warning(tmp_path: Path) -> None:
    text = COUNCIL.replace(
        'keywords = ["litter"]',
        'keywords = ["litter"]\nescalation_reviewed = 2026-10-01\n'
        'wards = { "Rivreside" = "o-evans" }',
    )
    path = tmp_path / "directory.toml"
    path.write_text(text, encoding="utf-8")

    [problem] = load_directory(path, date(2026, 11, 23))[1]

    assert (problem.key, problem.severity) == ("delivery_units[Street Scene].wards", "warning")
    assert "no member sits for ward 'Rivreside'" in problem.message


# ----- what mail taught, laid over the file ----------------------------------------------------


def test_what_mail_taught_is_laid_over_the_file_and_forgotten_when_cleared(
    tmp_path: Path,
) -> None:
    directory, _, _ = load(tmp_path, COUNCIL)
    away = Learnt(reported_absent_until=date(2026, 12, 6))

    taught = directory.with_learnt({"o-singh": away})

    assert taught.officer("o-singh").learnt == away
    assert taught.officer_by_address("harpreet.singh@council.example.gov.uk").learnt == away
    assert taught.officer("o-evans").learnt == Learnt()
    assert taught.with_learnt({"o-singh": away}) is taught  # nothing new: the same object
    assert taught.with_learnt({}).officer("o-singh").learnt == Learnt()


def test_the_file_cannot_set_what_only_mail_teaches(tmp_path: Path) -> None:
    text = COUNCIL.replace("absent_until = 2026-08-21", "learnt = true")

    _, problems, _ = load(tmp_path, text)

    assert "unknown field" in keyed(problems)["officers[o-singh].learnt"]


# ----- `mailbridge directory check` ----------------------------------------------------------

BROKEN = REPO / "tests" / "data" / "directory_broken.toml"


def check(*args: str) -> Result:
    return CliRunner().invoke(app, ["directory", "check", *args], env={"COLUMNS": "200"})


def test_check_names_each_problem_in_the_broken_example_with_its_file_and_entry() -> None:
    result = check(str(BROKEN), "--today", "2026-11-23")

    where = str(BROKEN)
    lines = set(result.stdout.splitlines())
    for key, severity, message in [
        ("officers[o-singh].manager", "error", "unknown officer 'o-nobody'"),
        ("officers[o-singh].deputy", "error", "unknown officer 'o-nobody-else'"),
        ("delivery_units[Highways].leads", "warning",
         "no active lead: its new cases will wait in triage"),
        ("delivery_units[Highways].escalation_manager", "error", "unknown officer 'o-boss'"),
        ("delivery_units[Highways].wards", "error",
         "unknown officer 'o-ghost' for ward 'Riverside'"),
        ("officers[o-walsh].addresses", "error",
         "dev.singh@council.example is also listed for officers[o-singh]"),
        ("delivery_units[Street Scene].escalation_reviewed", "warning",
         "escalation list last reviewed 2025-06-30, over 12 months ago"),
    ]:  # fmt: skip
        assert f"{where}: {key}: {severity}: {message}" in lines, key
    assert f"{where}: 5 error(s), 2 warning(s)" in lines
    assert result.exit_code == 1


def test_warnings_alone_pass_unless_strict(tmp_path: Path) -> None:
    path = tmp_path / "directory.toml"
    path.write_text(COUNCIL, encoding="utf-8")  # Street Scene's list was never reviewed

    relaxed, strict = check(str(path)), check(str(path), "--strict")

    assert relaxed.exit_code == 0 and "1 warning(s)" in relaxed.stdout
    assert strict.exit_code == 1


def test_check_of_a_clean_file_says_ok_and_of_nothing_says_why(tmp_path: Path) -> None:
    assert check(str(EXAMPLE_DIRECTORY), "--today", "2026-11-23").stdout.endswith(": ok\n")
    missing = check(str(tmp_path / "nope.toml"))
    assert missing.exit_code == 1 and "directory file not found" in missing.stdout
    assert check(str(EXAMPLE_DIRECTORY), "--today", "soon").exit_code == 2
