"""Honest timings: noisy or contended rows are re-measured automatically (bounded), what stays
flagged carries ``time_quality`` in the result, the CLI (table, --json, --csv) and the study
store. Contention and noise are simulated deterministically (no timing assertions)."""

from __future__ import annotations

import csv
import dataclasses
import io
import json
from pathlib import Path

import pytest
import torch

from netscale.bench import BenchConfig, TimingPolicy, harness
from netscale.bench.contention import CpuShare
from netscale.bench.harness import DEFAULT_RETRIES, bench_spec
from netscale.bench.result import BenchResult, time_quality_of
from netscale.specs import get_spec
from netscale.study.store import Store

# never flagged noisy by spread, so only the simulated flags decide
QUIET = TimingPolicy(warmup_iters=1, warmup_s=0.0, min_samples=3, max_samples=4, budget_s=0.1,
                     min_block_s=0.001, noisy_threshold=1e9)


def tiny_spec():
    return get_spec("ResNet-20-CIFAR").replace(resolution=8, name="tiny")


def fake_contention(monkeypatch, contended_attempts: int | None) -> list[int]:
    """The contention detector reports 90 % of the CPUs used by others on the first
    ``contended_attempts`` measurements (None: always); returns the attempt counter."""
    calls = [0]

    class FakeMonitor:
        def __enter__(self):
            return self

        def __exit__(self, *exc):
            calls[0] += 1
            busy = contended_attempts is None or calls[0] <= contended_attempts
            self.share = CpuShare(others=0.9 if busy else 0.0, steal=0.0, own=0.5)

    monkeypatch.setattr(harness, "CpuMonitor", FakeMonitor)
    return calls


def test_contended_first_attempt_is_remeasured(monkeypatch) -> None:
    calls = fake_contention(monkeypatch, 1)
    r = bench_spec(tiny_spec(), BenchConfig(batch_size=2, policy=QUIET))  # default retries
    assert calls[0] == 2 and r.attempts == 2
    assert not r.contended and r.cpu_others == 0.0 and r.time_quality == "ok"
    assert "best of 2 attempts" in r.note and "contended" not in r.note


def test_what_stays_contended_is_flagged_after_bounded_retries(monkeypatch) -> None:
    calls = fake_contention(monkeypatch, None)
    r = bench_spec(tiny_spec(), BenchConfig(batch_size=2, policy=QUIET))
    assert DEFAULT_RETRIES == 2 and calls[0] == r.attempts == 1 + DEFAULT_RETRIES
    assert r.contended and r.time_quality == "contended"
    assert "still contended after 3 attempt(s)" in r.note
    d = r.to_dict()
    assert d["time_quality"] == "contended" and d["attempts"] == 3
    back = BenchResult.from_dict(json.loads(json.dumps(d)))
    assert back.time_quality == "contended" and back.csv_row()["time_quality"] == "contended"
    # no retries asked: one measurement
    calls[0] = 0
    r = bench_spec(tiny_spec(), BenchConfig(batch_size=2, policy=QUIET, retries=0))
    assert calls[0] == r.attempts == 1 and r.time_quality == "contended"


def test_noisy_then_clean(monkeypatch) -> None:
    fake_contention(monkeypatch, 0)
    real = harness.measure_runtime
    seen = [0]

    def flaky(*a, **k):  # the first measurement comes out noisy, the next ones clean
        m = real(*a, **k)
        seen[0] += 1
        return dataclasses.replace(m, noisy=seen[0] == 1)

    monkeypatch.setattr(harness, "measure_runtime", flaky)
    r = bench_spec(tiny_spec(), BenchConfig(batch_size=2, policy=QUIET))
    assert r.attempts == 2 and not r.noisy and r.time_quality == "ok"
    # every attempt noisy: flagged after the bounded retries
    monkeypatch.setattr(harness, "measure_runtime",
                        lambda *a, **k: dataclasses.replace(real(*a, **k), noisy=True))
    r = bench_spec(tiny_spec(), BenchConfig(batch_size=2, policy=QUIET))
    assert r.attempts == 3 and r.time_quality == "noisy" and "still noisy" in r.note


def test_quality_of_rows_written_before_the_field() -> None:
    assert time_quality_of({"status": "ok", "noisy": False, "contended": False}) == "ok"
    assert time_quality_of({"status": "ok", "noisy": True, "contended": False}) == "noisy"
    assert time_quality_of({"status": "ok", "noisy": True, "contended": True}) == "contended"
    assert time_quality_of({"status": "oom", "noisy": False, "contended": False}) is None


def test_default_is_one_thread_and_restored() -> None:
    before = torch.get_num_threads()
    r = bench_spec(tiny_spec(), BenchConfig(batch_size=2, policy=QUIET, retries=0))
    assert r.env is not None and r.env.threads == 1
    assert torch.get_num_threads() == before


@pytest.fixture
def tiny(tmp_path: Path) -> str:
    path = tmp_path / "tiny.yaml"
    path.write_text("base: ResNet-20-CIFAR\nname: tiny\nnum_classes: 5\n")
    return str(path)


FAST = ("--budget", "0.1", "--warmup", "1", "--batch-size", "2", "--resolution", "8",
        "--noise-threshold", "9")  # 900 % IQR/median: never flagged noisy (>= 10 is refused)


def test_cli_shows_time_quality(run_cli, tiny, monkeypatch) -> None:
    fake_contention(monkeypatch, None)
    code, out, _ = run_cli("bench", tiny, *FAST, "--json")
    (row,) = json.loads(out)["results"]
    assert code == 0 and row["time_quality"] == "contended" and row["attempts"] == 3
    assert row["env"]["threads"] == 1
    code, out, _ = run_cli("bench", tiny, *FAST, "--csv", "--retries", "0")
    (row,) = list(csv.DictReader(io.StringIO(out)))
    assert row["time_quality"] == "contended" and row["attempts"] == "1"
    code, out, _ = run_cli("bench", tiny, *FAST)
    assert code == 0
    assert "CONTENDED, AFTER 3 ATTEMPTS" in out and " timing " in out
    assert "1 of 1 timings stayed noisy or contended" in out
    fake_contention(monkeypatch, 1)
    code, out, _ = run_cli("bench", tiny, *FAST, "--json")
    (row,) = json.loads(out)["results"]
    assert row["time_quality"] == "ok" and row["attempts"] == 2


def test_study_store_keeps_time_quality(tmp_path: Path, monkeypatch) -> None:
    fake_contention(monkeypatch, None)
    r = bench_spec(tiny_spec(), BenchConfig(batch_size=2, policy=QUIET, retries=1))
    with Store(tmp_path / "results.sqlite") as store:
        store.add_trials([{"id": "t", "base": "b", "strategy": "w", "factor": 2, "seed": 0,
                           "spec": {}, "flops": 1, "params": 1, "acts": 1,
                           "resolution": 8}])
        (t,) = store.trials()
        assert t.time_quality is None  # not timed yet
        store.record_bench("t", [r.to_dict()], r.time_ms)
        (t,) = store.trials()
        assert t.time_quality == "contended" and t.bench[0]["attempts"] == 2
        rows = list(csv.DictReader(io.StringIO(store.export("csv"))))
        assert rows[0]["time_quality"] == "contended"
        assert json.loads(store.export("json"))[0]["time_quality"] == "contended"
