"""Settings: the TOML file, the per-host environment overrides, and every problem with them.

Precedence, lowest first: built-in defaults (the embedded SQLite + Maildir + file outbox set-up
that needs no mail server), the TOML file (`--config` or MAILBRIDGE_CONFIG), then the
MAILBRIDGE_* environment variables that ops set per host. Relative paths are relative to the
working directory (systemd's WorkingDirectory=).

Loading never stops at the first mistake: every problem is collected with the file (or
environment variable) and key it came from, so `mailbridge config check` can list them all.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, time
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote, urlsplit

ENV_CONFIG = "MAILBRIDGE_CONFIG"
ENV_OVERRIDES = {
    "MAILBRIDGE_SOURCE": ("source", "url"),
    "MAILBRIDGE_DATABASE_URL": ("database", "url"),
    "MAILBRIDGE_OUTBOX": ("outbox", "url"),
    "MAILBRIDGE_ADDRESS": ("mailbox", "address"),
    "MAILBRIDGE_DIRECTORY": ("directory", "file"),
}
# Secrets that may come from the environment instead of a URL or a file.
ENV_SOURCE_PASSWORD = "MAILBRIDGE_SOURCE_PASSWORD"
ENV_OUTBOX_PASSWORD = "MAILBRIDGE_OUTBOX_PASSWORD"

SOURCE_SCHEMES = {"imap": 143, "imaps": 993, "maildir": None}
OUTBOX_SCHEMES = {"smtp": 25, "smtps": 465, "file": None}
ADDRESS_RE = re.compile(r"^[^@\s<>]+@[^@\s<>]+$")


@dataclass(frozen=True)
class Problem:
    """One thing wrong with the settings, located well enough for ops to fix it."""

    where: str  # a file path, or "env MAILBRIDGE_…"
    key: str  # dotted key, e.g. "source.url"
    message: str
    severity: str = "error"  # "error" stops the daemon; "warning" does not

    def __str__(self) -> str:
        return f"{self.where}: {self.key}: {self.severity}: {self.message}"


class ConfigError(Exception):
    def __init__(self, problems: list[Problem]):
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))


@dataclass(frozen=True)
class Endpoint:
    """A mail server or local path named by a URL, with the password resolved."""

    url: str = field(repr=False)  # may hold the password: reprs end up in logs and tracebacks
    scheme: str
    host: str = ""
    port: int | None = None
    username: str = ""
    password: str = field(default="", repr=False)
    path: str = ""  # Maildir or outbox directory for local schemes; IMAP folder otherwise

    @property
    def is_local(self) -> bool:
        return self.scheme in ("maildir", "file")

    def redacted(self) -> str:
        """The URL with any password replaced, for logs and `config show`."""
        if self.is_local:
            return self.url
        # "***" only when a password was resolved, so `config show` also tells ops whether one was.
        secret = ":***" if self.password else ""
        user = f"{quote(self.username, safe='')}{secret}@" if self.username or self.password else ""
        host = f"[{self.host}]" if ":" in self.host else self.host  # IPv6
        return f"{self.scheme}://{user}{host}:{self.port}/{quote(self.path, safe='/')}"


@dataclass(frozen=True)
class SourceSettings:
    endpoint: Endpoint
    folders: tuple[str, ...] = ("INBOX",)
    processed: str = "move"  # "move" to processed_folder, or "flag" with processed_flag
    processed_folder: str = "Processed"
    processed_flag: str = "\\Seen"
    idle: bool = True
    idle_renew_seconds: int = 9 * 60  # RFC 2177 says < 29 min; middleboxes drop sooner
    poll_seconds: int = 60
    batch_size: int = 100
    batch_bytes: int = 25_000_000
    auth: str = "password"  # or "xoauth2"
    workers: int = 0  # processes that parse mail and compose emails for the daemon; 0: none


@dataclass(frozen=True)
class ReferenceFormat:
    prefix: str = "ME"
    width: int = 5

    def format(self, year: int, seq: int) -> str:
        return f"{self.prefix}-{year}-{seq:0{self.width}d}"


@dataclass(frozen=True)
class ClockSettings:
    timezone: str = "Europe/London"
    cutoff: time = time(17, 0)
    response_days: int = 5
    closure_days: tuple[date, ...] = ()
    # The SLA (DESIGN §5) in working days; `units` overrides any of them for one delivery unit,
    # {"Highways": {"escalate_day": 7}}. mailbridge.schedule.policy turns these into policies.
    chaser_day: int = 3
    escalate_day: int = 5
    escalate_every: int = 2
    delay_reminder_days_before: int = 1
    misroute_flag_days: int = 1
    auto_close_days: int = 10
    units: dict[str, dict[str, int]] = field(default_factory=dict, hash=False)
    digest: bool = True
    digest_weekday: int = 0  # Monday, as date.weekday()
    digest_time: time = time(8, 0)
    sweep_seconds: int = 60  # how often the daemon asks "what is due now?"


SLA_KEYS = (
    "chaser_day",
    "escalate_day",
    "escalate_every",
    "delay_reminder_days_before",
    "misroute_flag_days",
    "auto_close_days",
)
WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")


@dataclass(frozen=True)
class OutboxPolicy:
    """How the sender loop behaves: flood limit, envelope, TLS, time-outs and giving up."""

    per_recipient_per_hour: int = 10  # automatic emails; the rest are held, never dropped
    from_name: str = "Members' Enquiries"
    envelope_from: str = ""  # SMTP MAIL FROM, where bounces go; "" = the mailbox address
    starttls: str = "auto"  # "auto": upgrade when offered, certificates checked; or "never"
    timeout_seconds: int = 30
    give_up_after_hours: int = 48  # of retrying 4xx / connection errors; then failed
    flush_seconds: int = 2  # how often the daemon looks for due mail
    stale_after_seconds: int = 600  # a row "sending" this long was left by a crash: resend


@dataclass(frozen=True)
class Settings:
    mailbox_address: str
    plus_addressing: bool
    source: SourceSettings
    database_url: str
    outbox: Endpoint
    directory_file: Path | None
    references: ReferenceFormat
    clock: ClockSettings
    template_dir: Path | None = None
    supervisors: frozenset[str] = frozenset()
    config_file: Path | None = None
    outbox_policy: OutboxPolicy = field(default_factory=OutboxPolicy)

    @property
    def own_addresses(self) -> frozenset[str]:
        return frozenset({self.mailbox_address.lower()})


# ----- the schema: section -> key -> (type check, default) ------------------------------------

_DEFAULTS: dict[str, dict[str, Any]] = {
    "mailbox": {"address": "mailbridge@localhost", "plus_addressing": True},
    "source": {
        "url": "maildir:var/inbox",
        "folders": None,  # None: the URL's folder, else INBOX
        "processed": "move",
        "processed_folder": "Processed",
        "processed_flag": "\\Seen",
        "idle": True,
        "idle_renew_seconds": 540,
        "poll_seconds": 60,
        "batch_size": 100,
        "batch_bytes": 25_000_000,
        "workers": "auto",
        "auth": "password",
        "password_file": None,
        "password_env": None,
    },
    "database": {"url": "sqlite:///var/mailbridge.db"},
    "outbox": {
        "url": "file:var/outbox",
        "password_file": None,
        "password_env": None,
        "per_recipient_per_hour": 10,
        "from_name": "Members' Enquiries",
        "envelope_from": None,  # None: the mailbox address
        "starttls": "auto",
        "timeout_seconds": 30,
        "give_up_after_hours": 48,
        "flush_seconds": 2,
        "stale_after_seconds": 600,
    },
    "directory": {"file": None},
    "references": {"prefix": "ME", "width": 5},
    "clock": {
        "timezone": "Europe/London",
        "cutoff": "17:00",
        "response_days": 5,
        "closure_days": [],
        "chaser_day": 3,
        "escalate_day": 5,
        "escalate_every": 2,
        "delay_reminder_days_before": 1,
        "misroute_flag_days": 1,
        "auto_close_days": 10,
        "units": {},
        "digest": True,
        "digest_weekday": "Monday",
        "digest_time": "08:00",
        "sweep_seconds": 60,
    },
    "templates": {"dir": None},
    # Addresses of the Members' Enquiries team whose officer commands count on any case.
    "team": {"supervisors": []},
}

_TYPES: dict[str, type | tuple[type, ...]] = {
    "plus_addressing": bool,
    "idle": bool,
    "idle_renew_seconds": int,
    "poll_seconds": int,
    "batch_size": int,
    "batch_bytes": int,
    "workers": (int, str),
    "width": int,
    "response_days": int,
    "folders": list,
    "closure_days": list,
    "supervisors": list,
    "cutoff": (str, time),
    **dict.fromkeys(SLA_KEYS, int),
    "units": dict,
    "digest": bool,
    "digest_time": (str, time),
    "sweep_seconds": int,
    "per_recipient_per_hour": int,
    "timeout_seconds": int,
    "give_up_after_hours": int,
    "flush_seconds": int,
    "stale_after_seconds": int,
}


class _Collector:
    def __init__(self) -> None:
        self.problems: list[Problem] = []

    def add(self, where: str, key: str, message: str, severity: str = "error") -> None:
        self.problems.append(Problem(where, key, message, severity))


def load_settings(
    config_file: str | Path | None = None, env: Mapping[str, str] | None = None
) -> Settings:
    """Settings from defaults, file and environment; raises ConfigError listing every error."""
    settings, problems = check_settings(config_file, env)
    errors = [p for p in problems if p.severity == "error"]
    if errors or settings is None:
        raise ConfigError(errors)
    return settings


def check_settings(
    config_file: str | Path | None = None, env: Mapping[str, str] | None = None
) -> tuple[Settings | None, list[Problem]]:
    """Every problem (errors and warnings) and, where there is no error, the settings."""
    env = os.environ if env is None else env
    out = _Collector()
    path, raw, origin = _gather(config_file, env, out)
    where = lambda section, key: origin.get((section, key), str(path) if path else "defaults")  # noqa: E731
    settings = _build(raw, where, env, out, path)
    if any(p.severity == "error" for p in out.problems):
        return None, out.problems
    return settings, out.problems


def setting_origins(
    config_file: str | Path | None = None, env: Mapping[str, str] | None = None
) -> dict[str, str]:
    """Where each dotted key's value came from: "default", the file, or "env MAILBRIDGE_…".

    For `config show`, so ops can see which layer to edit; problems are ignored here.
    """
    env = os.environ if env is None else env
    _, _, origin = _gather(config_file, env, _Collector())
    return {
        f"{section}.{key}": origin.get((section, key), "default")
        for section, keys in _DEFAULTS.items()
        for key in keys
    }


def _gather(
    config_file: str | Path | None, env: Mapping[str, str], out: _Collector
) -> tuple[Path | None, dict[str, dict[str, Any]], dict[tuple[str, str], str]]:
    """The settings file, the raw values after each layer, and which layer set each key."""
    config_file = config_file or env.get(ENV_CONFIG)
    path = Path(config_file) if config_file else None
    raw: dict[str, dict[str, Any]] = {s: dict(v) for s, v in _DEFAULTS.items()}
    origin: dict[tuple[str, str], str] = {}
    if path is not None:
        _merge_file(path, raw, origin, out)
    for var, (section, key) in ENV_OVERRIDES.items():
        if env.get(var):
            raw[section][key] = env[var]
            origin[(section, key)] = f"env {var}"
    return path, raw, origin


def _merge_file(
    path: Path, raw: dict[str, dict[str, Any]], origin: dict[tuple[str, str], str], out: _Collector
) -> None:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        out.add(str(path), "-", "config file not found")
        return
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        out.add(str(path), "-", f"not valid TOML: {exc}")
        return
    except OSError as exc:  # a directory, no permission: a message, never a traceback
        out.add(str(path), "-", f"cannot read config file: {exc.strerror or exc}")
        return
    for section, values in data.items():
        if section not in _DEFAULTS:
            out.add(str(path), section, f"unknown section (known: {', '.join(_DEFAULTS)})")
            continue
        if not isinstance(values, dict):
            out.add(str(path), section, "must be a [table]")
            continue
        for key, value in values.items():
            dotted = f"{section}.{key}"
            if key not in _DEFAULTS[section]:
                known = ", ".join(_DEFAULTS[section])
                out.add(str(path), dotted, f"unknown key (known in [{section}]: {known})")
                continue
            expected = _TYPES.get(key, str)
            # bool is an int in Python; a TOML `true` for a number is still a mistake.
            if not isinstance(value, expected) or (isinstance(value, bool) and expected is int):
                out.add(str(path), dotted, f"expected {_type_name(expected)}, got {value!r}")
                continue
            raw[section][key] = value
            origin[(section, key)] = str(path)


def _type_name(t: type | tuple[type, ...]) -> str:
    names = {
        bool: "true/false",
        int: "a whole number",
        str: "a string",
        list: "a list",
        dict: "a table",
        time: "a time",
    }
    types = t if isinstance(t, tuple) else (t,)
    return " or ".join(names.get(x, x.__name__) for x in types)


def _build(
    raw: dict[str, dict[str, Any]], where, env, out: _Collector, path: Path | None
) -> Settings:
    address = str(raw["mailbox"]["address"]).strip()
    if not ADDRESS_RE.match(address):
        out.add(
            where("mailbox", "address"), "mailbox.address", f"not an email address: {address!r}"
        )

    src = raw["source"]
    endpoint = _endpoint(
        src["url"], SOURCE_SCHEMES, "source", src, where, env, ENV_SOURCE_PASSWORD, out
    )
    folders = src["folders"]
    if folders is None:
        folders = [endpoint.path or "INBOX"] if endpoint and not endpoint.is_local else ["INBOX"]
    if not folders or not all(isinstance(f, str) and f for f in folders):
        out.add(
            where("source", "folders"), "source.folders", "must be a non-empty list of folder names"
        )
        folders = ["INBOX"]
    if src["processed"] not in ("move", "flag"):
        out.add(where("source", "processed"), "source.processed", "must be 'move' or 'flag'")
    if src["auth"] not in ("password", "xoauth2"):
        out.add(where("source", "auth"), "source.auth", "must be 'password' or 'xoauth2'")
    for key in ("poll_seconds", "batch_size", "batch_bytes", "idle_renew_seconds"):
        if src[key] <= 0:
            out.add(where("source", key), f"source.{key}", "must be greater than zero")
    workers = src["workers"]
    if workers == "auto":
        workers = _auto_workers()
    elif type(workers) is not int or workers < 0:  # a TOML true is an int to Python
        out.add(where("source", "workers"), "source.workers",
                "must be \"auto\" or a number of processes, 0 or more")  # fmt: skip
        workers = 0
    if src["idle_renew_seconds"] >= 29 * 60:
        out.add(
            where("source", "idle_renew_seconds"),
            "source.idle_renew_seconds",
            "must be under 29 minutes (RFC 2177)",
        )

    db_url = str(raw["database"]["url"])
    if not re.match(r"^(sqlite|postgresql)(\+\w+)?://", db_url):
        out.add(
            where("database", "url"),
            "database.url",
            "expected an SQLAlchemy URL such as sqlite:///var/mailbridge.db or "
            "postgresql+psycopg://user@host/db",
        )

    ob = raw["outbox"]
    outbox = _endpoint(
        ob["url"], OUTBOX_SCHEMES, "outbox", ob, where, env, ENV_OUTBOX_PASSWORD, out
    )
    outbox_policy = _outbox_policy(ob, address.lower(), where, out)

    directory_file = raw["directory"]["file"] or None  # file = "" means none, as omitting it
    if directory_file is None:
        out.add(
            where("directory", "file"),
            "directory.file",
            "no directory file: every sender is treated as a non-member (triage)",
            "warning",
        )
    elif not Path(directory_file).is_file():
        out.add(where("directory", "file"), "directory.file", f"file not found: {directory_file}")

    refs = raw["references"]
    if not re.fullmatch(r"[A-Z][A-Z0-9]{0,9}", str(refs["prefix"])):
        out.add(
            where("references", "prefix"),
            "references.prefix",
            "must be 1-10 capital letters or digits, starting with a letter",
        )
    if not 3 <= refs["width"] <= 9:
        out.add(where("references", "width"), "references.width", "must be between 3 and 9")

    clock = _clock(raw["clock"], where, out)

    template_dir = raw["templates"]["dir"]
    if template_dir is not None and not Path(template_dir).is_dir():
        out.add(where("templates", "dir"), "templates.dir", f"not a directory: {template_dir}")

    return Settings(
        mailbox_address=address.lower(),
        plus_addressing=bool(raw["mailbox"]["plus_addressing"]),
        source=SourceSettings(
            endpoint=endpoint or Endpoint(url=src["url"], scheme="maildir", path="var/inbox"),
            folders=tuple(folders),
            processed=src["processed"],
            processed_folder=src["processed_folder"],
            processed_flag=src["processed_flag"],
            idle=src["idle"],
            idle_renew_seconds=src["idle_renew_seconds"],
            poll_seconds=src["poll_seconds"],
            batch_size=src["batch_size"],
            batch_bytes=src["batch_bytes"],
            auth=src["auth"],
            workers=workers,
        ),
        database_url=db_url,
        outbox=outbox or Endpoint(url=ob["url"], scheme="file", path="var/outbox"),
        directory_file=Path(directory_file) if directory_file else None,
        references=ReferenceFormat(prefix=str(refs["prefix"]), width=refs["width"]),
        clock=clock,
        template_dir=Path(template_dir) if template_dir else None,
        supervisors=_supervisors(raw["team"]["supervisors"], where, out),
        config_file=path,
        outbox_policy=outbox_policy,
    )


def _auto_workers() -> int:
    """source.workers = "auto": a worker process per core beyond the daemon's own, at
    most four (so one on a two-core host, none on one core)."""
    return max(0, min(4, (os.cpu_count() or 1) - 1))


def _endpoint(
    url, schemes, section, values, where, env, password_var, out: _Collector
) -> Endpoint | None:
    """Parse an imap/imaps/maildir or smtp/smtps/file URL and resolve its password."""
    key = f"{section}.url"
    loc = where(section, "url")
    try:
        parts = urlsplit(str(url))
    except ValueError as exc:  # e.g. "Invalid IPv6 URL" for imaps://[::1
        out.add(loc, key, f"not a valid URL: {exc}")
        return None
    scheme = parts.scheme.lower()
    if scheme not in schemes:
        out.add(
            loc,
            key,
            f"unsupported scheme {scheme or '(none)'!r}; expected one of {', '.join(schemes)}",
        )
        return None
    if scheme in ("maildir", "file"):
        # maildir://var/inbox would silently mean /inbox (var is the URL's host): refuse it.
        if parts.netloc not in ("", ".", "localhost"):
            out.add(
                loc,
                key,
                f"write {scheme}:relative/path or {scheme}:///absolute/path; "
                f"{scheme}://name/... would make 'name' a host, not part of the path",
            )
            return None
        local = unquote((parts.netloc + parts.path) if parts.netloc == "." else parts.path)
        if not local:
            out.add(loc, key, f"{scheme} URL needs a path, e.g. {scheme}:///var/lib/mailbridge/...")
            return None
        return Endpoint(url=str(url), scheme=scheme, path=local)
    if not parts.hostname:
        out.add(loc, key, f"{scheme} URL needs a host, e.g. {scheme}://user@mail.example.org")
        return None
    try:
        port = parts.port or schemes[scheme]
    except ValueError:
        out.add(loc, key, "port must be a number from 0 to 65535")
        return None
    password = unquote(parts.password or "")
    password = _password(section, values, where, env, password_var, out) or password
    return Endpoint(
        url=str(url),
        scheme=scheme,
        host=parts.hostname,
        port=port,
        username=unquote(parts.username or ""),
        password=password,
        path=unquote(parts.path.lstrip("/")),
    )


def _password(section, values, where, env, password_var, out: _Collector) -> str:
    """A password from a file, a named env var or the standard env var, instead of the URL."""
    if values.get("password_file"):
        file = Path(values["password_file"])
        loc, key = where(section, "password_file"), f"{section}.password_file"
        try:
            secret = file.read_text(encoding="utf-8").strip()
        except (OSError, UnicodeDecodeError) as exc:
            out.add(loc, key, f"cannot read {file}: {getattr(exc, 'strerror', None) or exc}")
        else:
            if not secret:
                out.add(loc, key, f"{file} is empty", "warning")
            return secret
    if values.get("password_env"):
        name = values["password_env"]
        if name not in env:
            out.add(
                where(section, "password_env"),
                f"{section}.password_env",
                f"environment variable {name} is not set",
            )
        return env.get(name, "")
    return env.get(password_var, "")


def _outbox_policy(
    values: dict[str, Any], mailbox_address: str, where, out: _Collector
) -> OutboxPolicy:
    for key in (
        "per_recipient_per_hour",
        "timeout_seconds",
        "give_up_after_hours",
        "flush_seconds",
        "stale_after_seconds",
    ):
        if values[key] <= 0:
            out.add(where("outbox", key), f"outbox.{key}", "must be greater than zero")
    if values["starttls"] not in ("auto", "never"):
        out.add(
            where("outbox", "starttls"),
            "outbox.starttls",
            "must be 'auto' (STARTTLS when offered, certificates checked) or 'never' "
            "(local relays and tests only)",
        )
    envelope_from = str(values["envelope_from"] or mailbox_address).strip().lower()
    if values["envelope_from"] and not ADDRESS_RE.match(envelope_from):
        out.add(
            where("outbox", "envelope_from"),
            "outbox.envelope_from",
            f"not an email address: {envelope_from!r}",
        )
    if values["stale_after_seconds"] <= 3 * values["timeout_seconds"]:
        # Less than a slow send takes: another daemon's mail in hand would be sent again.
        out.add(
            where("outbox", "stale_after_seconds"),
            "outbox.stale_after_seconds",
            "is not much longer than timeout_seconds: mail still being sent may be resent",
            "warning",
        )
    return OutboxPolicy(
        per_recipient_per_hour=values["per_recipient_per_hour"],
        from_name=str(values["from_name"]),
        envelope_from=envelope_from,
        starttls=values["starttls"],
        timeout_seconds=values["timeout_seconds"],
        give_up_after_hours=values["give_up_after_hours"],
        flush_seconds=values["flush_seconds"],
        stale_after_seconds=values["stale_after_seconds"],
    )


def _clock(values: dict[str, Any], where, out: _Collector) -> ClockSettings:
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    tz = str(values["timezone"])
    try:
        ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError):
        out.add(where("clock", "timezone"), "clock.timezone", f"unknown time zone {tz!r}")
        tz = "Europe/London"
    cutoff = _local_time(values, "cutoff", time(17, 0), where, out)
    if values["response_days"] < 1:
        out.add(where("clock", "response_days"), "clock.response_days", "must be at least 1")
    closures: list[date] = []
    for i, day in enumerate(values["closure_days"]):
        if isinstance(day, date) and not isinstance(day, datetime):  # a datetime is a date too
            closures.append(day)
            continue
        try:
            closures.append(date.fromisoformat(str(day)))
        except ValueError:
            out.add(
                where("clock", "closure_days"),
                f"clock.closure_days[{i}]",
                f"expected a date YYYY-MM-DD, got {day!r}",
            )
    sla = {key: values[key] for key in SLA_KEYS}
    _check_sla(sla, "clock", lambda key: where("clock", key), out)
    weekday = str(values["digest_weekday"]).strip().lower()
    if weekday not in WEEKDAYS and weekday not in {d[:3] for d in WEEKDAYS}:
        out.add(where("clock", "digest_weekday"), "clock.digest_weekday",
                f"expected a day such as Monday, got {values['digest_weekday']!r}")  # fmt: skip
        weekday = "monday"
    if values["sweep_seconds"] < 1:
        out.add(where("clock", "sweep_seconds"), "clock.sweep_seconds", "must be at least 1")
    return ClockSettings(
        timezone=tz,
        cutoff=cutoff,
        response_days=values["response_days"],
        closure_days=tuple(closures),
        **sla,
        units=_unit_overrides(values["units"], sla, where("clock", "units"), out),
        digest=values["digest"],
        digest_weekday=[d[:3] for d in WEEKDAYS].index(weekday[:3]),
        digest_time=_local_time(values, "digest_time", time(8, 0), where, out),
        sweep_seconds=values["sweep_seconds"],
    )


def _local_time(values: dict[str, Any], key: str, fallback: time, where, out: _Collector) -> time:
    """A clock time of day, HH:MM, local to [clock] timezone (so no UTC offset allowed)."""
    value = values[key]
    if isinstance(value, str):
        try:
            value = time.fromisoformat(value)
        except ValueError:
            value = None
    if value is None or value.tzinfo is not None:
        out.add(where("clock", key), f"clock.{key}",
                f"expected a local time HH:MM, got {values[key]!r}")  # fmt: skip
        return fallback
    return value


def _check_sla(
    sla: dict[str, Any], prefix: str, where, out: _Collector, changed: Any = SLA_KEYS
) -> None:
    """Every SLA figure is a whole number of working days, and the chaser comes first.

    `changed`: the keys to check (a unit's overrides), so a mistake is reported once.
    """
    for key in changed:
        if sla[key] < 1:
            out.add(where(key), f"{prefix}.{key}", "must be at least 1 working day")
    key = next((k for k in ("chaser_day", "escalate_day") if k in changed), None)
    if key and sla["chaser_day"] >= sla["escalate_day"]:  # reported where it was set
        message = (
            f"chaser_day ({sla['chaser_day']}) must come before escalate_day "
            f"({sla['escalate_day']}): the officer is chased before the manager is told"
        )
        out.add(where(key), f"{prefix}.{key}", message)


def _unit_overrides(
    units: dict[str, Any], base: dict[str, int], file: str, out: _Collector
) -> dict[str, dict[str, int]]:
    """[clock.units."DU name"] tables: some SLA keys changed for one delivery unit."""
    good: dict[str, dict[str, int]] = {}
    for name, table in units.items():
        prefix = f'clock.units."{name}"'
        if not isinstance(table, dict):
            out.add(file, prefix, f"must be a table of SLA keys ({', '.join(SLA_KEYS)})")
            continue
        overrides: dict[str, int] = {}
        for key, value in table.items():
            if key not in SLA_KEYS:
                out.add(file, f"{prefix}.{key}", f"unknown key (known: {', '.join(SLA_KEYS)})")
            elif not isinstance(value, int) or isinstance(value, bool):
                out.add(file, f"{prefix}.{key}", f"expected a whole number, got {value!r}")
            else:
                overrides[key] = value
        before = len(out.problems)
        _check_sla(base | overrides, prefix, lambda _key: file, out, overrides)
        if len(out.problems) == before:
            good[name] = overrides
    return good


def _supervisors(values: list[Any], where, out: _Collector) -> frozenset[str]:
    good = set()
    for i, value in enumerate(values):
        if isinstance(value, str) and ADDRESS_RE.match(value.strip()):
            good.add(value.strip().lower())
        else:
            out.add(where("team", "supervisors"), f"team.supervisors[{i}]",
                    f"not an email address: {value!r}")  # fmt: skip
    return frozenset(good)
