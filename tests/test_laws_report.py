"""The report's "Scaling laws" section (netscale.report.laws_section.laws_section)."""

from __future__ import annotations

import base64
import re

import pytest

from netscale.advise.sources import load_study
from netscale.report.laws_section import FIG_ALL, FIG_PANELS, laws_section
from netscale_fixtures.synthetic import synthetic_study

PNG = b"\x89PNG\r\n\x1a\n"


def _images(html: str) -> list[bytes]:
    return [base64.b64decode(m) for m in re.findall(r'src="data:image/png;base64,([^"]+)"',
                                                    html)]


@pytest.fixture(scope="module")
def quick(tmp_path_factory: pytest.TempPathFactory):
    return load_study(synthetic_study(tmp_path_factory.mktemp("quick")))


def test_quickstart_sized_study_fits_power_law_and_says_so(quick, tmp_path):
    html = laws_section(quick, tmp_path)
    assert "Only 3 trained points per strategy: the plain power law was fitted" in html
    for s in ("d", "w", "r", "dwr", "dWr"):
        assert f'<td class="l">{s}</td>' in html
    # figures: written as PNG files and inlined (self-contained page)
    assert (tmp_path / FIG_ALL).is_file() and (tmp_path / FIG_PANELS).is_file()
    imgs = _images(html)
    assert len(imgs) == 2 and all(i.startswith(PNG) for i in imgs)
    assert imgs[0] == (tmp_path / FIG_ALL).read_bytes()
    assert "http://" not in html and "https://" not in html
    # leave-largest-out cannot run with 3 points for a 2-parameter law
    assert "skipped: too few smaller models" in html
    # runtime model with Pearson r per metric and the batch size it applies to
    assert "Runtime model" in html and "Pearson r" in html and "batch 32" in html
    # and a recommendation extrapolated to 2x the largest trained factor
    assert "Extrapolated recommendation for ×8 flops" in html
    assert "why not chosen" in html


def test_larger_study_uses_saturating_law_with_holdout(tmp_path):
    study = load_study(synthetic_study(tmp_path / "s", strategies=("dwr", "dWr", "w"),
                                       factors=(1, 2, 4, 8), seeds=(0, 1)))
    html = laws_section(study, tmp_path / "report")
    assert "saturating" in html and "plain power law was fitted" not in html
    assert "inside" in html or "OUTSIDE" in html
    # a, b, c with intervals in the parameter table
    assert re.search(r"<td>[0-9.e+-]+ \[[0-9.e+-]+, [0-9.e+-]+\]</td>", html)


def test_no_trained_trials_gives_a_sentence(tmp_path):
    html = laws_section(load_study(synthetic_study(tmp_path / "s", train=False)), tmp_path / "r")
    assert "No trained trials with a top-1 error yet" in html
    assert not _images(html)
    assert "Runtime model" in html  # the benchmark rows still give a runtime model


def test_too_few_sizes_gives_a_sentence(tmp_path):
    html = laws_section(load_study(synthetic_study(tmp_path / "s", factors=(1, 2))),
                        tmp_path / "r")
    assert "No scaling law could be fitted" in html and "at least 3 trained sizes" in html


def test_failed_and_pending_trials_are_left_out(tmp_path):
    st = synthetic_study(tmp_path / "s", strategies=("dwr", "dWr"), factors=(1, 2, 4, 8),
                         failed=("QuickNetY|dWr|x8|seed0",),
                         pending=("QuickNetY|dwr|x8|seed0",), bench=False)
    html = laws_section(load_study(st), tmp_path / "r")
    assert "1 trial(s) without a result" in html
    assert "No runtime model" in html


def test_report_integration(tmp_path):
    """`netscale report` includes the section."""
    from netscale.report.html import make_report

    st = synthetic_study(tmp_path / "study")
    page = make_report(st).read_text()
    assert "<h2>Scaling laws</h2>" in page
    assert "unavailable" not in page.split("<h2>Scaling laws</h2>")[1].split("<h2>")[0]
    assert len(_images(page)) >= 2
