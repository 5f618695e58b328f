"""Acknowledgement latency: from APPEND into the mailbox to the acknowledgement at the SMTP sink.

Run by hand (Dovecot 2.3 installed):

    python scripts/bench_ack_latency.py [--messages 200] [--interval 0.25]

Starts a throwaway Dovecot and an aiosmtpd sink, runs `mailbridge run` (IMAP IDLE, SQLite,
SMTP outbox) as a child process, then APPENDs member enquiries one at a time, `--interval`
seconds apart, and times each until the sink has accepted its acknowledgement (matched by
In-Reply-To). Prints p50, p95 and the worst case. Target: p95 under 3 seconds.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # the same Dovecot and SMTP sink the tests use

from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

from tests.imap_server import Dovecot  # noqa: E402
from tests.mail import make_email  # noqa: E402
from tests.smtp_sink import SmtpSink  # noqa: E402

MAILBOX = "enquiries@council.example"


def write_directory(path: Path, members: int) -> Path:
    """One member per message, so no member meets the per-recipient flood limit."""
    entries = [
        f'[[members]]\nid = "m{n}"\nname = "Cllr {n}"\naddresses = ["member{n}@council.example"]\n'
        for n in range(members)
    ]
    path.write_text("\n".join(entries), encoding="utf-8")
    return path


def watch(sink: SmtpSink, arrived: dict[str, float], stop: threading.Event) -> None:
    """Note when each acknowledgement reaches the sink (polled every 5 ms)."""
    seen = 0
    while not stop.is_set():
        messages = sink.messages
        for message in messages[seen:]:
            if message.in_reply_to:
                arrived.setdefault(message.in_reply_to, time.monotonic())
        seen = len(messages)
        time.sleep(0.005)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=200)
    parser.add_argument("--interval", type=float, default=0.25, help="seconds between APPENDs")
    args = parser.parse_args()
    console = Console()
    with Dovecot() as dovecot, SmtpSink() as sink, tempfile.TemporaryDirectory() as work:
        account = dovecot.new_account()
        env = {k: v for k, v in os.environ.items() if not k.startswith("MAILBRIDGE_")} | {
            "MAILBRIDGE_SOURCE": account.url,
            "MAILBRIDGE_DATABASE_URL": f"sqlite:///{work}/mailbridge.db",
            "MAILBRIDGE_OUTBOX": sink.url,
            "MAILBRIDGE_ADDRESS": MAILBOX,
            "MAILBRIDGE_DIRECTORY": str(write_directory(Path(work) / "d.toml", args.messages)),
        }
        daemon = subprocess.Popen(
            [sys.executable, "-m", "mailbridge", "run", "--log-level", "WARNING"],
            env=env, cwd=work,
        )  # fmt: skip
        arrived: dict[str, float] = {}
        stop = threading.Event()
        watcher = threading.Thread(target=watch, args=(sink, arrived, stop), daemon=True)
        watcher.start()
        try:
            time.sleep(3)  # start-up: migrations, first sync, IDLE
            sent: dict[str, float] = {}
            client = account.client()
            for n in range(args.messages):
                message_id = f"<latency-{n}@bench.example>"
                raw = make_email(
                    f"member{n}@council.example",
                    [MAILBOX],
                    f"Fly-tipping {n}",
                    message_id=message_id,
                )
                sent[message_id] = time.monotonic()
                client.append("INBOX", raw)
                time.sleep(args.interval)
            client.logout()
            deadline = time.monotonic() + 30
            while len(arrived) < len(sent) and time.monotonic() < deadline:
                time.sleep(0.1)
        finally:
            stop.set()
            daemon.terminate()
            daemon.wait(30)
    latencies = sorted(arrived[m] - t for m, t in sent.items() if m in arrived)
    missing = len(sent) - len(latencies)
    table = Table("messages", "acknowledged", "p50 s", "p95 s", "max s", "interval s",
                  title="APPEND → acknowledgement at the SMTP sink (IDLE)")  # fmt: skip
    quantiles = statistics.quantiles(latencies, n=100) if len(latencies) > 1 else [0.0] * 99
    table.add_row(
        str(len(sent)), str(len(latencies)), f"{statistics.median(latencies):.2f}",
        f"{quantiles[94]:.2f}", f"{latencies[-1]:.2f}", f"{args.interval}",
    )  # fmt: skip
    console.print(table)
    return 1 if missing else 0


if __name__ == "__main__":
    raise SystemExit(main())
