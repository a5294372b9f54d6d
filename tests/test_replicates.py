"""Seed replicates scored image by image (netscale.laws.replicates) against hand-computed
tables, and their use by the verdict and by results files."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from scipy.special import stdtrit

from netscale.advise import study_verdict
from netscale.advise.results_io import load_source
from netscale.errors import NetscaleError
from netscale.laws.replicates import (
    BITS_KEY,
    INDEPENDENT,
    PER_IMAGE,
    Replicates,
    compare,
    correct_of_epochs,
    decode_correct,
    encode_correct,
    group_interval,
)
from netscale.study.store import TrialRow

F2 = 2 / 1.386294361119891  # (n − 1) / χ²_2(0.5) for 3 seeds

# 3 seeds × 6 images, 1 = wrong
A = np.array([[1, 1, 1, 0, 0, 0],
              [1, 0, 0, 0, 0, 0],
              [1, 1, 0, 0, 0, 0]], dtype=bool)
B = np.array([[1, 1, 1, 1, 0, 0],
              [1, 1, 0, 1, 0, 0],
              [1, 1, 1, 0, 1, 0]], dtype=bool)


def t975(df: float) -> float:
    return float(stdtrit(df, 0.975))


def test_bitset_round_trip_and_size():
    rng = np.random.default_rng(0)
    bits = rng.random(3000) < 0.8
    text = encode_correct(bits)
    assert text.startswith("3000:") and len(text) == 5 + 500  # 375 bytes in base64
    assert np.array_equal(decode_correct(text), bits)
    assert np.array_equal(decode_correct(encode_correct([True, False, True])),
                          [True, False, True])
    for bad in ("", "12", "x:AAAA", "9:AA", "3:%%%"):
        with pytest.raises(ValueError):
            decode_correct(bad)


def test_final_epoch_bitset_is_used_only_when_it_matches_the_error():
    good = encode_correct([True, True, False, True])  # error 0.25
    epochs = [{"epoch": 1, BITS_KEY: encode_correct([False] * 4)}, {"epoch": 2, BITS_KEY: good}]
    assert correct_of_epochs(epochs, 0.25) is not None
    assert correct_of_epochs(epochs, 0.75) is None  # another evaluation's error
    assert correct_of_epochs([{"epoch": 1}], 0.25) is None  # an older store
    assert correct_of_epochs([{BITS_KEY: "broken"}], 0.25) is None


def test_group_interval_from_the_seed_by_image_table():
    g = Replicates.build([0.5, 1 / 6, 1 / 3], correct=list(~A))
    assert g.wrong is not None and g.n_val == 6
    iv = group_interval(g)
    # rows 1/2, 1/6, 1/3 (m = 1/3, s² = 1/36); columns 1, 2/3, 1/3, 0, 0, 0
    # SS_tot = 6 − 18/9 = 4, SS_rows = 6·2/36 = 1/3, SS_cols = 3·8/9 = 8/3 → MS_res = 1/10
    # σ²_a = 1/36 − (1/10)/6 = 1/90 → V_seed = 1/270 with df 2·((1/90)/(1/36))² = 0.32
    # V_img = var(cols)/N = (8/45)/6 = 4/135
    v_seed, v_img = 1 / 270, 4 / 135
    hi = F2 * v_seed
    df = (v_img + hi) ** 2 / (v_img**2 / 5 + hi**2 / 0.32)
    q = t975(df)
    assert iv.method == PER_IMAGE and iv.df == pytest.approx(df, rel=1e-12)
    assert iv.mean == pytest.approx(1 / 3)
    assert iv.seed_half == pytest.approx(q * math.sqrt(v_seed), rel=1e-12)
    assert iv.sampling_half == pytest.approx(q * math.sqrt(v_img), rel=1e-12)


def test_paired_difference_cancels_the_shared_image_difficulty():
    a = Replicates.build([0.5, 1 / 6, 1 / 3], correct=list(~A))
    b = Replicates.build([2 / 3, 0.5, 2 / 3], correct=list(~B))
    d = compare(a, b)
    # per-image difference of the column means: (0, 1/3, 1/3, 2/3, 1/3, 0), mean 5/18
    y = np.array([0, 1, 1, 2, 1, 0]) / 3
    v_img = float(np.var(y, ddof=1)) / 6
    # B: rows 2/3, 1/2, 2/3 (s² = 1/108); its two-way residual mean square, from the table:
    wb = B.astype(float)
    rows, cols, m = wb.mean(1), wb.mean(0), wb.mean()
    ss_res = (wb.sum() - 18 * m * m) - 6 * ((rows - m) ** 2).sum() - 3 * ((cols - m) ** 2).sum()
    var_b = max(0.0, float(np.var(rows, ddof=1)) - ss_res / 10 / 6)
    assert var_b == 0.0  # B's seeds differ no more than its image-level disagreement explains
    va = 1 / 90
    hi = F2 * va / 3
    df = (v_img + hi) ** 2 / (v_img**2 / 5 + hi**2 / 0.32)
    assert d.paired and d.method == PER_IMAGE and not d.seeds_missing
    assert d.diff == pytest.approx(5 / 18)
    assert d.half == pytest.approx(t975(df) * math.sqrt(v_img + va / 3), rel=1e-12)


def test_without_tables_or_with_independent_sets_nothing_is_paired():
    a = Replicates((0.20, 0.21, 0.22), n_val=3000)
    b = Replicates((0.25, 0.26, 0.24), n_val=3000, shared=False)
    assert b.wrong is None and not compare(a, b).paired
    iv = group_interval(b)
    # independent sets: the seed spread holds the sampling error: a t(2) interval
    assert iv.method == INDEPENDENT and iv.sampling_half == 0.0
    assert iv.seed_half == pytest.approx(4.302652729749462 * 0.01 / math.sqrt(3), rel=1e-9)
    one = group_interval(Replicates((0.2,), n_val=2000))
    assert one.seeds_missing and one.seed_half == 0.0
    assert one.sampling_half == pytest.approx(1.959963984540054 * math.sqrt(0.16 / 2000))


# ------------------------------------------------------------------ the verdict with bitsets


def _trial(strategy: str, seed: int, wrong: np.ndarray | None, err: float | None = None,
           ms: float = 10.0) -> TrialRow:
    epochs = []
    if wrong is not None:
        err = float(wrong.mean())
        epochs = [{"epoch": 3, "top1_err": err, BITS_KEY: encode_correct(~wrong)}]
    return TrialRow(id=f"B|{strategy}|x2|seed{seed}", base="B", strategy=strategy, factor=2.0,
                    seed=seed, status="done", attempts=1, failures=0,
                    spec={"name": strategy, "stages": [{"depth": 1, "width": ord(strategy[0])}]},
                    flops=2_000_000, params=1000, acts=2000, resolution=16,
                    bench=[{"mode": "infer", "status": "ok", "time_ms": ms, "iqr_ms": 0.1,
                            "samples": 16}], time_ms=ms, top1_err=err, epochs_done=3,
                    epochs=epochs)


def _tables(gap_images: int, n: int = 3, N: int = 3000, seed: int = 0
            ) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Two strategies scored on the same images: B is wrong on ``gap_images`` more images
    than A (the same hard images for every seed), plus a few seed-specific flips."""
    rng = np.random.default_rng(seed)
    hard = rng.random(N) < 0.2
    extra = np.zeros(N, dtype=bool)
    extra[np.flatnonzero(~hard)[:gap_images]] = True
    ta, tb = [], []
    for _ in range(n):
        flip = rng.random(N) < 0.01
        ta.append(hard ^ flip)
        tb.append((hard | extra) ^ (rng.random(N) < 0.01))
    return ta, tb


def test_verdict_compares_image_by_image_and_calls_a_small_gap_firm():
    ta, tb = _tables(gap_images=45)  # 1.5 points on 3,000 images
    trials = ([_trial("w", s, w, ms=9.0) for s, w in enumerate(ta)]
              + [_trial("d", s, w, ms=4.0) for s, w in enumerate(tb)])
    v = study_verdict(trials, data_info={"val_size": 3000}, config={})
    assert v.recommended == "w" and v.tied == [] and v.firm
    assert "paired image by image" in v.reason
    assert "d is faster (4 ms" in v.reason and "firmly less accurate" in v.reason
    assert "same network" not in v.reason
    assert all(g.interval_method == PER_IMAGE for g in v.groups)
    d = v.to_dict()["differences"]["d"]  # d − w, the best
    assert d["paired"] and d["firm"] and d["low"] > 0 and d["method"] == PER_IMAGE
    # the same errors without the per-image results: the conservative fallback ties them
    plain = [_trial(t.strategy, t.seed, None, err=t.top1_err, ms=t.time_ms or 0.0)
             for t in trials]
    v2 = study_verdict(plain, data_info={"val_size": 3000}, config={})
    assert v2.tied == ["w"] and v2.recommended == "d"
    assert any("no per-image results" in n for n in v2.notes)


# ------------------------------------------------------------------ results files


def _write(tmp_path: Path, rows: list[str]) -> Path:
    p = tmp_path / "res.csv"
    p.write_text("\n".join(rows) + "\n", encoding="utf-8")
    return p


def test_results_file_n_val_and_shared_set_reach_the_intervals(tmp_path):
    head = "group,flops,top1_err_pct,seed,n_val,val_shared"
    rows = [head] + [f"{g},{f},{e},{s},3000,true" for g, f, es in
                     (("d", 4e8, (20.0, 21.0, 20.5)), ("w", 4e8, (24.0, 23.5, 24.5)))
                     for s, e in enumerate(es)]
    study = load_source(_write(tmp_path, rows))
    assert study.data_info == {"val_size": 3000, "val_shared": True}
    v = study_verdict(study.trials, data_info=study.data_info, config=study.config)
    g = {x.strategy: x for x in v.groups}
    assert v.n_val == 3000 and g["d"].sampling_half and g["d"].sampling_half > 0
    assert "same network" not in v.reason  # rows without an architecture
    indep = [r.replace(",true", ",false") for r in rows]
    st2 = load_source(_write(tmp_path, indep))
    v2 = study_verdict(st2.trials, data_info=st2.data_info, config=st2.config)
    assert all(x.interval_method == INDEPENDENT for x in v2.groups)


@pytest.mark.parametrize("rows, msg", [
    (["group,flops,top1_err_pct,n_val", "d,4e8,20,3000", "w,4e8,21,2000"], "n_val differs"),
    (["group,flops,top1_err_pct,n_val", "d,4e8,20,0.5"], "whole number"),
    (["group,flops,top1_err_pct,val_shared", "d,4e8,20,true"], "needs an n_val"),
    (["group,flops,top1_err_pct,n_val,val_shared", "d,4e8,20,100,maybe"], "true or false"),
])
def test_results_file_validation_set_columns_are_checked(tmp_path, rows, msg):
    with pytest.raises(NetscaleError, match=msg):
        load_source(_write(tmp_path, rows))
