"""Classification of a parsed message: ours, a bounce, an automatic reply, or mail from a person.

Pure rules, no I/O. Each rule is a small named predicate in RULES, tried in order; the first that
holds decides, and its kebab-case name is shown on the case timeline, so a supervisor can see
why a message was not acknowledged. The order is the safety order of DESIGN.md §3: our own mail,
then bounces, then automatic replies, and only then the sender. Whatever is not caught before
the sender rules may be acknowledged, so every rule above them exists to stop a mail loop, and
every heuristic among them needs a second signal so a councillor's enquiry is never swallowed
(notes/libraries.md §7; RFC 3834).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property

from mailbridge.ingest.parse import Address, ParsedMessage

# Every email mailbridge sends carries it; value: the case reference or "1".
OWN_HEADER = "X-Mailbridge"
OWN, BOUNCE, AUTO_REPLY, ENQUIRY, CC_ENQUIRY, NON_MEMBER = (
    "own",
    "bounce",
    "auto_reply",
    "enquiry",
    "cc_enquiry",
    "non_member",
)


@dataclass(frozen=True)
class Verdict:
    kind: str  # one of the six above
    rule: str  # short kebab-case name of the rule that decided, shown on the case timeline


@dataclass(frozen=True)
class Facts:
    """What a rule may look at: the message and the two things only the caller knows."""

    msg: ParsedMessage
    own_addresses: frozenset[str]
    is_member: Callable[[str], bool]

    def header(self, name: str) -> str:
        return self.msg.headers.get(name, "").strip()

    @property
    def sender(self) -> str:
        return self.msg.from_.email if self.msg.from_ else ""

    @cached_property
    def from_member(self) -> bool:
        """Asked once, and only if no automatic rule decided first."""
        return bool(self.sender) and self.is_member(self.sender)


@dataclass(frozen=True)
class Rule:
    name: str
    kind: str
    holds: Callable[[Facts], bool]


def is_own_address(address: str, own_addresses: frozenset[str]) -> bool:
    """Ours if it, or it without a "+tag", is one of our addresses: met+ME-2026-00001@x is
    ours when met@x is (DESIGN.md §3, matching by plus-address)."""
    address = address.strip().lower()
    if "@" not in address:
        return False
    own = own_addresses if all(a == a.lower() for a in own_addresses) else _lowered(own_addresses)
    if address in own:
        return True
    local, _, domain = address.rpartition("@")
    base = local.split("+", 1)[0]
    return base != local and f"{base}@{domain}" in own


def _lowered(addresses: frozenset[str]) -> frozenset[str]:
    return frozenset(a.strip().lower() for a in addresses)


# -- our own mail ------------------------------------------------------------------------------


def own_header(f: Facts) -> bool:
    # Replies do not copy custom headers, so only mail we generated carries it. A sender who
    # forges it gets their message ignored, never a reply: the safe way round for loops.
    return OWN_HEADER.lower() in f.msg.headers


def own_address(f: Facts) -> bool:
    return bool(f.sender) and is_own_address(f.sender, f.own_addresses)


# -- bounces -----------------------------------------------------------------------------------

_DSN_REPORT_TYPES = frozenset({"delivery-status", "global-delivery-status"})
# "post_master" is Verizon's and Apache James's spelling.
_DAEMON_LOCAL_PARTS = frozenset(
    {"mailer-daemon", "mailerdaemon", "mail-daemon", "postmaster", "post_master"}
)
_DAEMON_NAMES = re.compile(
    r"\bmailer[-_ ]?daemon\b|\bmail delivery (?:subsystem|system)\b|\bpost_?master\b", re.I
)


def dsn_report(f: Facts) -> bool:
    """RFC 3464: a multipart/report of delivery-status, or a delivery-status part found by
    parse() outside any attached message (some MTAs wrap it in multipart/mixed)."""
    m = f.msg
    return (
        (m.content_type == "multipart/report" and m.report_type in _DSN_REPORT_TYPES)
        or m.content_type in ("message/delivery-status", "message/global-delivery-status")
        or bool(m.dsn_status or m.dsn_recipients)
    )


_REPORT_PARTS = frozenset({"message/disposition-notification", "message/feedback-report"})


def other_report(f: Facts) -> bool:
    """Any other machine report: read receipts (RFC 8098), abuse and DMARC failure reports
    (RFC 5965), TLS reports; also such a part inside multipart/mixed, as Outlook re-wraps them.
    Not a delivery failure, but machine-made about a message: treated as a bounce so it is
    attached to its case for the team, and so it can never pass for an officer's out-of-office."""
    m = f.msg
    return m.content_type == "multipart/report" or any(
        a.content_type in _REPORT_PARTS for a in m.attachments
    )


def x_failed_recipients(f: Facts) -> bool:
    return "x-failed-recipients" in f.msg.headers  # Exim's bounces


def _daemon_address(address: str) -> bool:
    return address.rpartition("@")[0].lower() in _DAEMON_LOCAL_PARTS


def mailer_daemon_sender(f: Facts) -> bool:
    """From MAILER-DAEMON / postmaster / "Mail Delivery Subsystem", with or without an '@'
    (parse() keeps the From text for exactly this). No councillor writes from these."""
    if _daemon_address(f.sender) or _DAEMON_NAMES.search(f.msg.from_header):
        return True
    return bool(_DAEMON_NAMES.search(f.header("return-path")))


_BOUNCE_SUBJECT = re.compile(
    r"^\W*(?:"
    r"undeliver(?:able|ed)\b|non[- ]?deliver|not (?:be )?delivered|"
    r"delivery (?:status notification|failure|failed|has failed|notification|problem|report)|"
    r"(?:mail|message) delivery (?:failed|failure|problem)|failure notice|returned mail|"
    r"returned to sender|mail system error|delivery status|could not send|"
    r"warning: (?:could not|message)|delayed mail|unzustellbar|non remis|no entregado"
    r")",
    re.I,
)


def bounce_subject(f: Facts) -> bool:
    """A delivery-failure subject ("failure notice", "Undeliverable Message") from an MTA that
    sends no DSN structure (qmail, m-FILTER, Verizon in the corpus). A subject alone is not
    enough, since a councillor may well write "Returned mail from the sorting office": it must
    come with the null reverse path RFC 5321 §4.5.5 requires of a bounce, an Auto-Submitted
    header, or the returned message attached."""
    m = f.msg
    if not _BOUNCE_SUBJECT.search(m.subject):
        return False
    return bool(m.embedded_message_ids) or null_return_path(f) or auto_submitted(f)


# -- automatic replies -------------------------------------------------------------------------

_TOKEN = re.compile(r"[A-Za-z_-]+")
# Vendor spellings of "this is an automatic reply" (the X-Autoreply family, sisimai's list).
_AUTOREPLY_HEADERS = ("x-autoreply", "x-autorespond", "x-autoresponder", "x-autoreply-from",
                      "x-mail-autoreply", "x-fc-machinegenerated")  # fmt: skip


def auto_submitted(f: Facts) -> bool:
    """RFC 3834 §5: any Auto-Submitted value but "no" (an empty field says nothing)."""
    token = _TOKEN.match(f.header("auto-submitted"))
    return bool(token) and token.group(0).lower() != "no"


def x_autoreply(f: Facts) -> bool:
    for name in _AUTOREPLY_HEADERS:
        value = f.msg.headers.get(name)
        if value is not None and value.strip().lower() not in ("no", "false", "0"):
            return True
    if f.header("x-autogenerated").lower() == "reply":
        return True
    return "vacation" in f.header("x-apple-action").lower()  # iCloud's vacation responder


def precedence_bulk(f: Facts) -> bool:
    return f.header("precedence").lower() in ("bulk", "junk", "list", "auto_reply")


# RFC 2919 and RFC 2369 fields, and ezmlm's "Mailing-List".
_LIST_HEADERS = ("list-id", "list-post", "list-help", "list-subscribe", "list-unsubscribe",
                 "list-owner", "list-archive", "mailing-list")  # fmt: skip


def list_id(f: Facts) -> bool:
    """Mailing-list traffic (RFC 2919 / 2369). Never acknowledged; the pipeline may still file
    it, since a councillor could write through a ward list."""
    return any(name in f.msg.headers for name in _LIST_HEADERS)


_AUTOREPLY_SUBJECT = re.compile(
    # The phrase must open the subject, so "Re: Automatic reply: …" from a person does not
    # match, and be followed by a colon, a bracket or the end: "Out of office hours noise" does
    # not match. Exchange's localised prefixes are listed as they begin (Latvian in the corpus).
    r"^\W*(?:automatic reply|auto[- ]?reply|auto[- ]?respon[sd]\w*|autoreply|"
    r"out of (?:the )?office(?: auto ?reply| reply)?|away from (?:the |my )?office|"
    r"[āa]rpus biroja[\w ]*|abwesenheitsnotiz|automatische antwort|automatisch antwoord|"
    r"r[ée]ponse automatique[\w' ]*|respuesta autom[áa]tica[\w ]*|risposta automatica[\w ]*|"
    r"resposta autom[áa]tica|automaattinen vastaus|automatisk svar)\s*(?::|$|\()",
    re.I,
)
_AUTOREPLY_BODY = re.compile(
    r"out of (?:the )?office|on (?:annual |parental |maternity |sick )?leave|"
    r"(?:currently|will be|i am|i'm) (?:away|absent|out)|limited access to (?:my )?e-?mail|"
    r"(?:back|return(?:ing)?) (?:in the office |to the office )?on|automatic(?:ally generated)? "
    r"(?:reply|response)|auto[- ]?reply|this is an automated",
    re.I,
)


def autoreply_subject(f: Facts) -> bool:
    """An out-of-office subject ("Automatic reply:", "Out of Office:", "Auto Response", and the
    localised Exchange prefixes) from a responder that sets none of the headers above. The
    corpus needs it: an Exchange 2003 OOF (Latvian prefix) and a Yahoo "Auto Response" carry
    no other signal at all. It must be backed by the body reading like an absence notice, or
    by X-Auto-Response-Suppress (which Exchange puts on its own OOFs), so a councillor's
    subject that merely mentions an auto-reply does not match."""
    m = f.msg
    if not _AUTOREPLY_SUBJECT.search(m.subject):
        return False
    if f.header("x-auto-response-suppress"):
        return True
    return bool(_AUTOREPLY_BODY.search(m.body_text[:5_000]))


def null_return_path(f: Facts) -> bool:
    """Return-Path: <> — the envelope of DSNs, MDNs and RFC 3834 responders; a person's mail
    always has a reverse path. Last among the automatic signals, as the least specific."""
    return f.header("return-path").replace(" ", "") == "<>"


# X-Auto-Response-Suppress is deliberately NOT a rule of its own. It is Exchange's request that
# *recipients* forgo automatic replies to this message ([MS-OXOMSG] 2.2.1.77,
# PidTagAutoResponseSuppress): a statement about the answer wanted, not about who wrote the
# message. Exchange sets it on its own OOFs and NDRs, but also on mail a person wrote and a
# system relayed (in the corpus: a GitHub issue comment and a helpdesk reply), and a councillor
# writing from a casework system or Outlook add-in may carry it. It only backs the subject rule.
# Likewise a "no-reply@" sender is not a rule: it is never a member, so it is triaged without an
# acknowledgement anyway, and a council web form that sends from no-reply@ must reach the team.


# -- people ------------------------------------------------------------------------------------


def _ours_in(f: Facts, addresses: tuple[Address, ...]) -> bool:
    return any(is_own_address(a.email, f.own_addresses) for a in addresses)


def member_to(f: Facts) -> bool:
    return f.from_member and _ours_in(f, f.msg.to)


def member_cc(f: Facts) -> bool:
    """Copied in on a member's email to an officer (DESIGN.md §2, origin "cc")."""
    return f.from_member and _ours_in(f, f.msg.cc) and bool(f.msg.to)


def member_cc_no_to(f: Facts) -> bool:
    """Only Cc lines and nobody in To: it was written to us as much as to anyone."""
    return f.from_member and _ours_in(f, f.msg.cc)


def member_bcc(f: Facts) -> bool:
    """Neither To nor Cc names us: Bcc, or delivered via an alias (Delivered-To only)."""
    return f.from_member and not _ours_in(f, f.msg.to) and not _ours_in(f, f.msg.cc)


def unknown_sender(f: Facts) -> bool:
    return True


RULES: tuple[Rule, ...] = (
    Rule("own-header", OWN, own_header),
    Rule("own-address", OWN, own_address),
    Rule("dsn-report", BOUNCE, dsn_report),
    Rule("other-report", BOUNCE, other_report),
    Rule("x-failed-recipients", BOUNCE, x_failed_recipients),
    Rule("mailer-daemon-sender", BOUNCE, mailer_daemon_sender),
    Rule("bounce-subject", BOUNCE, bounce_subject),
    Rule("auto-submitted", AUTO_REPLY, auto_submitted),
    Rule("x-autoreply", AUTO_REPLY, x_autoreply),
    Rule("autoreply-subject", AUTO_REPLY, autoreply_subject),
    Rule("precedence-bulk", AUTO_REPLY, precedence_bulk),
    Rule("list-id", AUTO_REPLY, list_id),
    Rule("null-return-path", AUTO_REPLY, null_return_path),
    Rule("member-to", ENQUIRY, member_to),
    Rule("member-cc", CC_ENQUIRY, member_cc),
    Rule("member-cc-no-to", ENQUIRY, member_cc_no_to),
    Rule("member-bcc", ENQUIRY, member_bcc),
    Rule("unknown-sender", NON_MEMBER, unknown_sender),
)


def classify(
    msg: ParsedMessage, *, own_addresses: frozenset[str], is_member: Callable[[str], bool]
) -> Verdict:
    """The first rule that holds decides; the last always holds."""
    facts = Facts(msg=msg, own_addresses=_lowered(own_addresses), is_member=is_member)
    for rule in RULES:
        if rule.holds(facts):
            return Verdict(kind=rule.kind, rule=rule.name)
    raise AssertionError("unknown-sender always holds")  # pragma: no cover
