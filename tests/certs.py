"""A throwaway self-signed certificate for the test servers' TLS (Dovecot and the SMTP sink)."""

from __future__ import annotations

import subprocess
from pathlib import Path


def make_self_signed(directory: Path, host: str = "127.0.0.1") -> tuple[Path, Path]:
    """Write cert.pem and key.pem for `host` into `directory`; returns (cert, key)."""
    cert, key = directory / "cert.pem", directory / "key.pem"
    # The SAN must name the IP: Python checks the host name against subjectAltName only.
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
         "-nodes", "-days", "2", "-subj", f"/CN={host}", "-addext", f"subjectAltName=IP:{host}",
         "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True, timeout=30,
    )  # fmt: skip
    return cert, key
