"""The shared messy-email corpus (../shared/corpus): where it is and what its manifest says."""

from __future__ import annotations

import csv
import os
from dataclasses import dataclass
from pathlib import Path

CORPUS = Path(
    os.environ.get("MAILBRIDGE_CORPUS") or Path(__file__).resolve().parents[2] / "shared" / "corpus"
)
AUTOMATIC_KINDS = {"bounce", "autoreply"}


@dataclass(frozen=True)
class CorpusMessage:
    path: Path
    kind: str
    sha256: str
    size: int
    features: str

    @property
    def name(self) -> str:
        return str(self.path.relative_to(CORPUS))


def corpus_messages() -> list[CorpusMessage]:
    manifest = CORPUS / "MANIFEST.tsv"
    if not manifest.exists():
        raise FileNotFoundError(f"corpus manifest not found at {manifest}; set MAILBRIDGE_CORPUS")
    with manifest.open(newline="", encoding="utf-8") as f:
        return [
            CorpusMessage(
                CORPUS / row["path"], row["kind"], row["sha256"], int(row["size"]), row["features"]
            )
            for row in csv.DictReader(f, delimiter="\t")
        ]
