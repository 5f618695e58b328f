"""Email commands: where a reply's own text ends and the commands in it (pure, table-driven)."""

from __future__ import annotations

import pytest

from mailbridge.cases.commands import new_text, read_commands

pytestmark = pytest.mark.unit

LONGEST_ON = "On " + "x" * 200 + "wrote:"  # the most a client's "On … wrote:" line may hold


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ("> quoted from the first line", ""),
        ("  \t> an indented quote", ""),
        ("Fine.\n\n\n> quoted after blank lines", "Fine.\n\n"),
        ("a > b is not a quote\nnor is -- Original Message -- here", None),
        ("Fine.\nOn Mon wrote:\nold", "Fine."),
        ("Fine.\nOn Mo wrote:\nold", None),  # too short to be a date or a name
        (f"Fine.\n{LONGEST_ON}\nold", "Fine."),
        (f"Fine.\n{LONGEST_ON.replace('On ', 'On x')}\nold", None),
        ("Fine.\non mon, 2 mar 2026 at 09:14, bob <b@x.example> WROTE:  \nold", "Fine."),
        ("Fine.\nOn Monday he wrote: it was done\nmore", None),  # "wrote:" must end the line
        ("Fine.\n-----Original Message-----\nold", "Fine."),
        ("Fine.\n-- original message --\nold", "Fine."),
        ("Fine.\n__________\nold", "Fine."),
        ("Fine.\n_________\nold", None),  # nine: not Outlook's rule
        ("Fine.\n---------- Forwarded message ---------\nold", "Fine."),
        ("Fine.\nFrom: Bob\nSent: Monday\nold", "Fine."),
        ("Fine.\nFrom: Bob\nTo: x\nSent: Monday\nold", "Fine."),
        ("Fine.\nFrom: Bob\nTo: x\nCc: y\nDate: Monday\nold", "Fine."),
        ("Fine.\nFrom: Bob\nTo: x\nCc: y\nSubject: z\nSent: Monday\nold", None),  # 4 lines on
        ("Fine.\n*From:* Bob\n*Sent:* Monday\nold", "Fine."),
        ("Fine.\nFrom:\nSent: Monday\nold", None),  # nobody after "From:"
        ("Fine.\nFrom: Bob\nSent:\nold", None),
        ("Fine.\nFrom: Bob\nSent:Monday\nold", None),
        ("Fine.\rThanks.\r> old\r", "Fine.\nThanks."),
        ("Fine.\r\nThanks.\r\n\r\nOn Mon, Bob wrote:\r\n> old", "Fine.\nThanks.\n"),
        ("Fine.\r\rThanks.\r\n", "Fine.\n\nThanks.\n"),
        ("", None),
    ],
)
def test_the_new_text_is_what_comes_before_the_first_line_of_the_quoted_message(body, expected):
    """`None`: nothing is quoted, and the whole body (its line ends as "\\n") is new."""
    whole = body.replace("\r\n", "\n").replace("\r", "\n")
    assert new_text(body) == (whole if expected is None else expected)


def test_commands_are_read_from_the_new_text_only():
    body = "Done.\n  #resolved  \n#budget maybe\n#frobnicate now\n\nOn Mon, Bob wrote:\n> #delay x"
    commands, rejected = read_commands(body)
    assert [(c.name, c.line) for c in commands] == [("resolved", "#resolved")]
    assert [(r.line, r.reason) for r in rejected] == [
        ("#budget maybe", "#budget takes yes or no"),
        ("#frobnicate now", "unknown command #frobnicate"),
    ]
