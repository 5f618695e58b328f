"""The committee pack: one self-contained HTML file whose charts render in headless Chromium."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import tempfile
from datetime import timedelta
from pathlib import Path

import pytest

from tests.test_report_support import case, cli_runner, london, store

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
UNITS = ["Highways", "Street Scene", "Housing", "Parks & Open Spaces"]
# Inserted into a copy of the pack by the test only: the pack itself has no script.
MEASURE = """<pre id="measure"></pre><script>
const charts = [...document.querySelectorAll("svg.chart")].map(svg => {
  const box = svg.getBoundingClientRect();
  const marks = [...svg.querySelectorAll(".mark")].map(m => m.getBoundingClientRect());
  return {id: svg.id, width: box.width, height: box.height, marks: marks.length,
          drawn: marks.filter(b => b.width > 0 && b.height > 0).length};
});
document.getElementById("measure").textContent = JSON.stringify(charts);
</script>"""


@pytest.fixture
def pack(engine, db_url, monkeypatch, tmp_path) -> str:
    """A year of cases across four DUs, and the pack for it."""
    rows = []
    start = london(2025, 4, 1, 10)
    for i in range(400):
        received = start + timedelta(hours=21 * i)
        fast = i % 5 != 0
        rows.append(
            case(
                f"ME-2025-{i:05d}",
                received,
                delivery_unit=UNITS[i % len(UNITS)],
                member=f"cllr-{i % 7}",
                resolved_at=received + timedelta(days=2 if fast else 12) if i % 13 else None,
                delay_advised_at=received + timedelta(days=3) if i % 10 == 0 else None,
                feedback="satisfied" if i % 3 == 0 else None,
            )
        )
    store(engine, *rows)
    mailbridge = cli_runner(db_url, monkeypatch, tmp_path)
    out = tmp_path / "pack.html"
    result = mailbridge(
        "report", "pack", "--from", "2025-04-01", "--to", "2026-03-31", "--html", out
    )
    assert "wrote" in result.stdout
    return out.read_text(encoding="utf-8")


def test_the_pack_is_one_file_that_needs_nothing_from_the_network(pack):
    assert "<script" not in pack
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", pack)
    assert "@import" not in pack and "url(" not in pack
    assert "@page { size: A4" in pack
    titles = re.findall(r"<h2>(.*?)</h2>", pack)
    assert len(titles) == 8  # monthly, by DU, open, quarters, status, members, feedback, routing
    assert "Parks &amp; Open Spaces" in pack  # names are escaped, not trusted as markup
    assert len(re.findall(r'<svg id="chart-', pack)) == 3


def _chromium(*args: str) -> subprocess.CompletedProcess:
    if not Path(CHROMIUM).exists():
        pytest.fail("chromium is not installed (scripts/test installs it with apt-get)", False)
    profile = tempfile.mkdtemp(prefix="mailbridge-chromium-")
    try:
        return subprocess.run(
            [
                CHROMIUM,
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
                f"--user-data-dir={profile}",
                *args,
            ],
            capture_output=True,
            timeout=120,
            check=True,
        )
    finally:
        shutil.rmtree(profile, ignore_errors=True)


@pytest.mark.slow
def test_the_pack_renders_its_charts_in_headless_chromium(pack, tmp_path):
    probe = tmp_path / "probe.html"
    probe.write_text(pack.replace("</body>", MEASURE + "</body>"), encoding="utf-8")
    dom = _chromium("--window-size=1000,1400", "--dump-dom", probe.as_uri()).stdout.decode()
    measured = re.search(r'<pre id="measure">(.*?)</pre>', dom, re.S)
    assert measured, dom[-2000:]
    charts = {c["id"]: c for c in json.loads(measured.group(1).replace("&quot;", '"'))}
    assert set(charts) == {"chart-monthly", "chart-open", "chart-quarters-2025"}
    for chart in charts.values():
        assert chart["width"] > 300 and chart["height"] > 100, chart
        assert chart["marks"] > 0 and chart["drawn"] == chart["marks"], chart
    assert charts["chart-monthly"]["marks"] == 24  # two lines of 12 months
    assert charts["chart-quarters-2025"]["marks"] == 5 * 4  # four DUs and Total, 4 quarters


@pytest.mark.slow
def test_the_pack_prints_on_a4_pages(pack, tmp_path):
    page = tmp_path / "pack.html"
    page.write_text(pack, encoding="utf-8")
    pdf = tmp_path / "pack.pdf"
    _chromium("--no-pdf-header-footer", f"--print-to-pdf={pdf}", page.as_uri())
    data = pdf.read_bytes()
    pages = re.findall(rb"/Type\s*/Page[^s]", data)
    assert len(pages) >= 8  # every report starts a page
    sizes = {tuple(round(float(x)) for x in m) for m in re.findall(
        rb"/MediaBox\s*\[\s*0\s+0\s+([\d.]+)\s+([\d.]+)\s*\]", data
    )}  # fmt: skip
    assert sizes == {(595, 842)} or sizes == {(596, 843)}, sizes  # A4 in points
