"""The HTML report in a real browser (headless Chromium): it renders offline, its figures are
inlined, and its script sorts the trial table. CI installs Chromium (.ci/run)."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from netscale.report.html import make_report
from netscale.study.config import load_study_config
from netscale.study.runner import run_study

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser") \
    or shutil.which("google-chrome")
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="needs Chromium (apt-get install "
                                "chromium; .ci/run installs it)")


def _chromium(*args: str) -> subprocess.CompletedProcess[str]:
    cmd = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
           "--no-first-run", "--disable-extensions", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("browser")
    raw = {"name": "browser", "out": "out", "bases": ["ResNet-20-CIFAR"],
           "base_overrides": {"resolution": 16}, "strategies": ["d", "w", "dWr"],
           "factors": [1, 2, 4], "train": False,
           "bench": {"enabled": True, "mode": "infer", "batch_size": 2, "budget": 0.2}}
    (tmp / "study.yaml").write_text(yaml.safe_dump(raw))
    cfg = load_study_config(tmp / "study.yaml")
    run_study(cfg, stream=None)
    return make_report(cfg.out_dir)


def _flops_column(dom: str) -> list[float]:
    body = dom[dom.index("<tbody>", dom.index('class="sortable"')):]
    body = body[:body.index("</tbody>")]
    values = []
    for row in re.findall(r"<tr[^>]*>(.*?)</tr>", body, re.S):
        cells = re.findall(r'<td[^>]*data-v="([^"]*)"', row)
        values.append(float(cells[3]))  # trial, strategy, s, flops
    return values


def test_report_renders_in_chromium_and_sorts(report: Path, tmp_path: Path) -> None:
    shot = tmp_path / "report.png"
    r = _chromium(f"--screenshot={shot}", "--window-size=1280,2400", report.as_uri())
    assert shot.is_file() and shot.stat().st_size > 20_000, r.stderr[-2000:]
    from PIL import Image

    with Image.open(shot) as im:
        colours = im.convert("RGB").resize((64, 120)).getcolors(64 * 120)
    assert colours is not None and len(colours) > 20  # text, tables and plots, not a blank page

    plain = _chromium("--dump-dom", report.as_uri()).stdout
    assert "Recommendation" in plain and plain.count("data:image/png;base64,") >= 2
    unsorted = _flops_column(plain)
    asc = _flops_column(_chromium("--dump-dom", report.as_uri() + "#sort=flops").stdout)
    desc = _flops_column(_chromium("--dump-dom", report.as_uri() + "#sort=flops-desc").stdout)
    assert len(asc) == 7 and sorted(unsorted) == asc and asc == sorted(asc)
    assert desc == sorted(asc, reverse=True) and asc != unsorted
