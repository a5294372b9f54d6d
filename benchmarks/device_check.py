"""Device check: every device-dependent path of netscale, run once, in one command.

Run (the first thing to run on a GPU machine; about 5 minutes on one GPU):

    PYTHONPATH=src python benchmarks/device_check.py                 # cuda if available
    PYTHONPATH=src python benchmarks/device_check.py --device cpu --quick   # the CI form

Steps (each prints PASS/FAIL/SKIP with its figure; a failing step does not stop the others):

1.  ``environment``: torch, device name, compute capability, native bf16, device count;
2.  ``bench``: ``netscale bench`` in infer and train mode (CUDA events on a GPU), fp32,
    contiguous: ms per batch and peak memory;
3.  ``bench-time``: the infer time against an independent timing loop (synchronised
    ``time.perf_counter``): the fastest samples of both within a factor 1.5;
4.  ``bench-memory``: the train peak memory against ``torch.cuda.max_memory_allocated`` read
    directly around two training steps of the same model and batch, within 25 % (on the CPU:
    at least weights + gradients + momentum, which the peak must hold);
5.  ``precision-auto``: ``netscale bench --precision auto`` (train mode): the precision chosen
    among fp32, bf16 and (CUDA) fp16 with a GradScaler, with the reasons printed;
6.  ``amp-train``: the same short ``netscale train`` run (digits, 2 epochs, seed 0) in fp32,
    bf16 (where native) and fp16 (CUDA, GradScaler): every loss finite, and the mean training
    loss of the last epoch of each within the tolerance of fp32's: ``--loss-tolerance`` (default
    0.05) absolute or that fraction of fp32's loss, whichever is larger;
7.  ``compile``: ``netscale bench --compile`` (infer);
8.  ``channels-last``: ``netscale bench --memory-format channels_last`` (infer), against NCHW;
9.  ``recommend``: ``netscale recommend --measure --device DEVICE`` (three strategies, ×2);
10. ``study``: a two-trial study (base and ×2 by d) with ``--device DEVICE``;
11. ``export-torchscript``, ``export-pt2``: ``netscale export``, then the file loaded on the
    device and its output compared with the PyTorch model's on the device;
12. ``ddp``: ``torchrun --nproc_per_node 2 -m netscale train`` where two GPUs exist (skipped
    with a line otherwise);
13. ``headline``: the paper's runtime comparison: RegNetY-400MF (and ResNet-50 on a GPU) scaled
    ×4 and ×16 by d, w, r, dwr, dWr, inference at batch 64 (GPU) or 8 (CPU), fp32: time per
    strategy and the Pearson r of runtime against flops, params and acts.

``--quick`` shrinks every workload (ResNet-20-CIFAR at 32 px, the headline at 64 px and
batch 2, tiny timing budgets) so that the CPU form runs in about a minute
(tests/test_device_check.py). One JSON summary is written to ``--out``. Docs:
docs/device-check.md.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import math
import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

SCHEMA = "netscale.device_check/1"
HEADLINE_STRATEGIES = ("d", "w", "r", "dwr", "dWr")
HEADLINE_FACTORS = (4, 16)


@dataclass
class Outcome:
    """A step's result: ``pass``, ``fail`` or ``skip``, its figure, and details for the JSON."""

    status: str
    figure: str
    detail: dict[str, Any] = field(default_factory=dict)


class StepTimeout(Exception):
    pass


@contextlib.contextmanager
def time_limit(seconds: float) -> Iterator[None]:
    """Raises :class:`StepTimeout` in the main thread after ``seconds`` (Unix; else no limit)."""
    if seconds <= 0 or not hasattr(signal, "SIGALRM"):
        yield
        return

    def on_alarm(signum: int, frame: Any) -> None:
        raise StepTimeout(f"step exceeded its time limit of {seconds:g} s")

    old = signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


def one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}"[:300]


# ------------------------------------------------------------------------------ the CLI

def cli(argv: list[str]) -> tuple[int, str, str]:
    """``netscale ARGV`` in this process: (exit code, stdout, stderr)."""
    from netscale.cli.main import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main(argv)
        except SystemExit as exc:  # argparse
            code = int(exc.code) if isinstance(exc.code, int) else 2
    return code, out.getvalue(), err.getvalue()


def cli_json(argv: list[str]) -> Any:
    """The JSON that ``netscale ARGV --json`` prints; one line naming the failure otherwise."""
    code, out, err = cli(argv)
    if code != 0 and not out.strip():
        last = [ln for ln in err.strip().splitlines() if ln.strip()]
        raise RuntimeError(f"netscale {argv[0]} exited {code}: {last[-1] if last else ''}")
    try:
        return json.loads(out)
    except json.JSONDecodeError:
        raise RuntimeError(f"netscale {argv[0]} printed no JSON (exit {code}): "
                           f"{(err.strip().splitlines() or [''])[-1]}") from None


# ----------------------------------------------------------------------------- the check

@dataclass
class Plan:
    """The workloads: full (the GPU form) or quick (the CI form on the CPU)."""

    device: str
    quick: bool
    model: str
    resolution: int | None
    batch: int
    budget: float
    headline_bases: tuple[str, ...]
    headline_batch: int
    headline_resolution: int | None
    train_subset: int  # 0: the whole training set
    train_epochs: int
    loss_tolerance: float


class DeviceCheck:
    def __init__(self, plan: Plan, workdir: Path) -> None:
        self.plan = plan
        self.work = workdir
        self.steps: list[dict[str, Any]] = []
        self.bench_rows: dict[str, dict[str, Any]] = {}
        self.headline: list[dict[str, Any]] = []

    @property
    def cuda(self) -> bool:
        return self.plan.device.startswith("cuda")

    def run_step(self, name: str, fn: Callable[[], Outcome], limit: float) -> None:
        t0 = time.perf_counter()
        try:
            with time_limit(limit):
                outcome = fn()
        except Exception as exc:
            outcome = Outcome("fail", one_line(exc),
                              {"where": traceback.format_exc().strip().splitlines()[-3:]})
        secs = time.perf_counter() - t0
        print(f"[{outcome.status.upper():4}] {name}: {outcome.figure} ({secs:.1f} s)",
              flush=True)
        self.steps.append({"name": name, "status": outcome.status, "figure": outcome.figure,
                           "seconds": round(secs, 2), **outcome.detail})

    # ------------------------------------------------------------------ shared arguments

    def bench_args(self, *extra: str) -> list[str]:
        p = self.plan
        args = ["bench", p.model, "--device", p.device, "--batch-size", str(p.batch),
                "--budget", str(p.budget), "--retries", "0", "--json"]
        if p.resolution:
            args += ["--resolution", str(p.resolution)]
        return [*args, *extra]

    def spec(self) -> Any:
        from netscale.specs import resolve_spec

        spec = resolve_spec(self.plan.model)
        return spec.replace(resolution=self.plan.resolution) if self.plan.resolution else spec

    def sync(self) -> None:
        if self.cuda:
            import torch

            torch.cuda.synchronize(self.plan.device)

    # ------------------------------------------------------------------------- the steps

    def environment(self) -> Outcome:
        import torch

        from netscale.bench.setting import native_bf16

        d: dict[str, Any] = {"torch": torch.__version__, "python": platform.python_version(),
                             "cuda_available": torch.cuda.is_available(),
                             "cuda_devices": torch.cuda.device_count()
                             if torch.cuda.is_available() else 0,
                             "native_bf16": native_bf16(self.plan.device)}
        if self.cuda:
            dev = torch.device(self.plan.device)
            d["device_name"] = torch.cuda.get_device_name(dev)
            d["capability"] = ".".join(map(str, torch.cuda.get_device_capability(dev)))
            d["cuda"] = torch.version.cuda
            d["cudnn"] = torch.backends.cudnn.version()
            fig = f"{d['device_name']} (sm {d['capability']}, CUDA {d['cuda']})"
        else:
            from netscale.bench.env import cpu_model

            d["device_name"] = cpu_model()
            fig = f"{d['device_name']}, {os.cpu_count()} logical CPUs"
        fig += f"; torch {d['torch']}; native bf16: {'yes' if d['native_bf16'] else 'no'}"
        return Outcome("pass", fig, {"env": d})

    def bench(self) -> Outcome:
        data = cli_json(self.bench_args("--mode", "both", "--precision", "fp32",
                                        "--memory-format", "contiguous"))
        rows = {r["mode"]: r for r in data["results"]}
        self.bench_rows.update(rows)
        bad = [m for m in ("infer", "train") if rows.get(m, {}).get("status") != "ok"]
        if bad:
            return Outcome("fail", f"{', '.join(bad)} did not run: "
                           f"{[rows.get(m, {}).get('note') for m in bad]}", {"rows": rows})
        i, t = rows["infer"], rows["train"]
        fig = (f"infer {i['time_ms']:.2f} ms/batch, train {t['time_ms']:.2f} ms/batch "
               f"(batch {i['batch_size']}); peak memory infer {i['peak_mem_mib']:.1f} MiB, "
               f"train {t['peak_mem_mib']:.1f} MiB ({t['mem_method']})")
        return Outcome("pass", fig, {"infer": _brief(i), "train": _brief(t)})

    def bench_time(self) -> Outcome:
        import torch

        from netscale.models import build_model

        row = self.bench_rows.get("infer")
        if not row or row.get("status") != "ok":
            return Outcome("skip", "no bench infer result to compare with")
        torch.manual_seed(0)
        spec = self.spec()
        model = build_model(spec).to(self.plan.device).eval()
        x = torch.randn(self.plan.batch, spec.in_channels, spec.resolution, spec.resolution,
                        device=self.plan.device)
        threads = torch.get_num_threads()
        if not self.cuda:  # netscale bench's default: one intra-op thread
            torch.set_num_threads(1)
        blocks: list[float] = []
        try:
            with torch.inference_mode():
                for _ in range(3):
                    model(x)
                start = time.perf_counter()
                while len(blocks) < 10 or (time.perf_counter() - start < self.plan.budget
                                           and len(blocks) < 50):
                    self.sync()
                    t0 = time.perf_counter()
                    model(x)
                    self.sync()
                    blocks.append((time.perf_counter() - t0) * 1e3)
        finally:
            torch.set_num_threads(threads)
        # minima: the estimate least disturbed by other processes on a shared machine
        direct, fastest = sorted(blocks)[len(blocks) // 2], min(blocks)
        ratio = row["min_ms"] / fastest
        ok = 1 / 1.5 <= ratio <= 1.5
        quality = row.get("time_quality") or "ok"
        fig = (f"netscale bench {row['time_ms']:.2f} ms/batch (fastest sample "
               f"{row['min_ms']:.2f}), direct loop {direct:.2f} ms/batch (fastest {fastest:.2f}, "
               f"{len(blocks)} synchronised iterations): fastest/fastest {ratio:.2f} "
               "(pass within 1.5x)")
        if not ok and quality != "ok":
            fig += (f"; netscale bench flagged its measurement {quality}: rerun on an idle "
                    "machine")
        return Outcome("pass" if ok else "fail", fig,
                       {"bench_ms": row["time_ms"], "bench_min_ms": row["min_ms"],
                        "direct_ms": direct, "direct_min_ms": fastest, "ratio": ratio,
                        "time_quality": quality})

    def bench_memory(self) -> Outcome:
        import torch
        import torch.nn.functional as F

        from netscale.models import build_model

        row = self.bench_rows.get("train")
        if not row or row.get("status") != "ok" or row.get("peak_mem_mib") is None:
            return Outcome("skip", "no bench train result to compare with")
        spec = self.spec()
        if not self.cuda:
            params = sum(p.numel() for p in build_model(spec).parameters())
            floor = 3 * 4 * params / 2**20  # fp32 weights, gradients, momentum
            ok = row["peak_mem_mib"] >= floor
            return Outcome("pass" if ok else "fail",
                           f"netscale's CPU peak {row['peak_mem_mib']:.1f} MiB "
                           f"({row['mem_method']}) >= weights + gradients + momentum "
                           f"{floor:.1f} MiB: {'yes' if ok else 'no'} "
                           "(torch.cuda.max_memory_allocated exists only on CUDA)",
                           {"bench_mib": row["peak_mem_mib"], "floor_mib": floor})
        dev = self.plan.device
        gc_collect()
        torch.cuda.synchronize(dev)
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(dev)
        base = torch.cuda.memory_allocated(dev)
        torch.manual_seed(0)
        model = build_model(spec).to(dev).train()
        opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-5)
        x = torch.randn(self.plan.batch, spec.in_channels, spec.resolution, spec.resolution,
                        device=dev)
        y = torch.randint(0, spec.num_classes, (self.plan.batch,), device=dev)
        for _ in range(2):
            loss = F.cross_entropy(model(x).float(), y)
            loss.backward()
            opt.step()
            opt.zero_grad(set_to_none=True)
        torch.cuda.synchronize(dev)
        direct = (torch.cuda.max_memory_allocated(dev) - base) / 2**20
        del model, opt, x, y, loss
        ratio = row["peak_mem_mib"] / direct
        ok = 0.75 <= ratio <= 1.25
        return Outcome("pass" if ok else "fail",
                       f"netscale bench train peak {row['peak_mem_mib']:.1f} MiB, "
                       f"torch.cuda.max_memory_allocated directly {direct:.1f} MiB: ratio "
                       f"{ratio:.2f} (pass within 25 %)",
                       {"bench_mib": row["peak_mem_mib"], "direct_mib": direct,
                        "ratio": ratio})

    def precision_auto(self) -> Outcome:
        data = cli_json(self.bench_args("--mode", "train", "--precision", "auto",
                                        "--memory-format", "contiguous"))
        row = data["results"][0]
        if row.get("status") != "ok":
            return Outcome("fail", f"bench did not run: {row.get('note')}")
        s = row["setting"]
        probed = [f"{p['precision']} {p['images_per_s']:,.0f} images/s" for p in s["probe"]]
        ok = s["precision"] in ("fp32", "bf16", "fp16") and bool(s["reason"])
        fig = (f"chose {s['precision']}: {s['reason']}"
               + (f" [probed: {'; '.join(probed)}]" if probed else ""))
        return Outcome("pass" if ok else "fail", fig, {"setting": s})

    def train_run(self, precision: str, tag: str) -> dict[str, Any]:
        out = self.work / f"train-{tag}"
        subset = ["--subset", str(self.plan.train_subset)] if self.plan.train_subset else []
        return cli_json([
            "train", "ResNet-20-CIFAR", "--data", "digits", "--epochs",
            str(self.plan.train_epochs), *subset, "--val-subset", "128",
            "--batch-size", "64", "--seed", "0", "--precision", precision,
            "--memory-format", "contiguous", "--device", self.plan.device, "--threads", "1",
            "--out", str(out), "--json", "--quiet"])

    def amp_train(self) -> Outcome:
        from netscale.bench.setting import native_bf16

        precisions = ["fp32"]
        skipped = []
        if native_bf16(self.plan.device):
            precisions.append("bf16")
        else:
            skipped.append("bf16 (not native on this device)")
        if self.cuda:
            precisions.append("fp16")
        else:
            skipped.append("fp16 (CUDA only)")
        runs = {p: self.train_run(p, p) for p in precisions}
        losses = {p: float(r["train_loss"]) for p, r in runs.items()}
        vals = {p: float(r["loss"]) for p, r in runs.items()}
        finite = all(math.isfinite(v) for v in [*losses.values(), *vals.values()])
        ref = losses["fp32"]
        diffs = {p: abs(v - ref) for p, v in losses.items() if p != "fp32"}
        tol = max(self.plan.loss_tolerance, self.plan.loss_tolerance * ref)
        ok = finite and all(d <= tol for d in diffs.values())
        parts = [f"{p} {losses[p]:.4f}" for p in precisions]
        fig = (f"mean train loss {', '.join(parts)}; |diff| vs fp32 "
               + (", ".join(f"{p} {d:.4f}" for p, d in diffs.items()) or "-")
               + f" (tolerance {tol:.3f}); all finite: {'yes' if finite else 'no'}"
               + (f"; not run: {', '.join(skipped)}" if skipped else ""))
        if len(precisions) == 1:
            return Outcome("skip", fig, {"train_loss": losses})
        return Outcome("pass" if ok else "fail", fig,
                       {"train_loss": losses, "val_loss": vals, "diff": diffs,
                        "tolerance": tol,
                        "settings": {p: r.get("setting") for p, r in runs.items()}})

    def compile(self) -> Outcome:
        if not self.cuda and self.plan.quick:
            return Outcome("skip", "not in --quick on the CPU (inductor's C++ build takes "
                           "minutes); run without --quick")
        if not self.cuda and shutil.which(os.environ.get("CXX", "g++")) is None \
                and shutil.which("c++") is None:
            return Outcome("skip", "torch.compile on the CPU needs a C++ compiler (none found)")
        data = cli_json(self.bench_args("--mode", "infer", "--compile", "--precision", "fp32",
                                        "--memory-format", "contiguous"))
        row = data["results"][0]
        if row.get("status") != "ok":
            return Outcome("fail", f"compiled bench did not run: {row.get('note')}")
        eager = self.bench_rows.get("infer", {}).get("time_ms")
        fig = f"compiled {row['time_ms']:.2f} ms/batch" + (
            f", eager {eager:.2f} ms/batch ({eager / row['time_ms']:.2f}x)" if eager else "")
        return Outcome("pass", fig, {"compiled_ms": row["time_ms"], "eager_ms": eager})

    def channels_last(self) -> Outcome:
        data = cli_json(self.bench_args("--mode", "infer", "--precision", "fp32",
                                        "--memory-format", "channels_last"))
        row = data["results"][0]
        if row.get("status") != "ok" or row["setting"]["memory_format"] != "channels_last":
            return Outcome("fail", f"channels_last bench did not run: {row.get('note')}")
        nchw = self.bench_rows.get("infer", {}).get("time_ms")
        fig = f"channels_last {row['time_ms']:.2f} ms/batch" + (
            f", NCHW {nchw:.2f} ms/batch (NHWC {nchw / row['time_ms']:.2f}x the speed)"
            if nchw else "")
        return Outcome("pass", fig, {"channels_last_ms": row["time_ms"], "nchw_ms": nchw})

    def recommend(self) -> Outcome:
        p = self.plan
        args = ["recommend", p.model, "--target-flops", "2x", "--measure", "--device",
                p.device, "--budget", str(p.budget), "--strategies", "d,w,dWr", "--alphas", "",
                "--batch-size", str(p.batch), "--json"]
        data = cli_json(args)
        chosen = data.get("recommended")
        ok = bool(chosen)
        return Outcome("pass" if ok else "fail",
                       f"recommended {chosen} for ×2 flops of {p.model}, candidates timed on "
                       f"{p.device}", {"recommended": chosen, "reason": data.get("reason")})

    def study(self) -> Outcome:
        cfg = self.work / "study.yaml"
        out = self.work / "study"
        cfg.write_text(
            "name: device-check\n"
            f"out: {out}\n"
            "bases: [ResNet-20-CIFAR]\n"
            "strategies: [d]\n"
            "factors: [1, 2]\n"
            "resolution_multiple: 1\n"
            "seeds: [0]\n"
            f"data: {{name: digits, subset: {self.plan.train_subset or 1024}, val_subset: 128}}\n"
            "recipe: {epochs: 1, batch_size: 64}\n"
            f"bench: {{mode: infer, batch_size: {self.plan.batch}, budget: "
            f"{self.plan.budget}, retries: 0}}\n"
            "retries: 0\n")
        code, _out, err = cli(["study", str(cfg), "--device", self.plan.device,
                                 "--workers", "1", "--json"])
        trials = _study_trials(out)
        done = [t for t in trials if t.get("status") == "done"]
        ok = code == 0 and len(done) == 2
        last = (err.strip().splitlines() or [""])[-1]
        return Outcome("pass" if ok else "fail",
                       f"{len(done)}/2 trials done on {self.plan.device} (exit {code})"
                       + ("" if ok else f": {last}"), {"trials": trials})

    def export(self, fmt: str) -> Outcome:
        import torch

        from netscale.models import build_model

        suffix = {"torchscript": ".ts", "pt2": ".pt2"}[fmt]
        path = self.work / f"model{suffix}"
        args = ["export", self.plan.model, "--format", fmt, "--out", str(path), "--json"]
        if self.plan.resolution:
            args += ["--resolution", str(self.plan.resolution)]
        written = cli_json(args)
        dev = self.plan.device
        spec = self.spec()
        torch.manual_seed(0)  # the weights netscale export builds (export_spec)
        model = build_model(spec).to(dev).eval()
        if fmt == "torchscript":
            loaded = torch.jit.load(str(path), map_location=dev)
        else:
            loaded = torch.export.load(str(path)).module().to(dev)
        x = torch.randn(2, spec.in_channels, spec.resolution, spec.resolution, device=dev)
        with torch.no_grad():
            want = model(x)
            got = loaded(x)
        diff = float((got - want).abs().max())
        scale = float(want.abs().max())
        ok = diff <= 1e-3 * max(1.0, scale)
        return Outcome("pass" if ok else "fail",
                       f"wrote {written.get('bytes', 0) / 2**20:.2f} MiB (CPU check "
                       f"{written.get('max_abs_diff', float('nan')):.2g}); loaded on {dev}: "
                       f"max |diff| {diff:.2g} vs PyTorch on {dev} (outputs up to {scale:.3g})",
                       {"diff": diff, "scale": scale, "export": written})

    def ddp(self) -> Outcome:
        import torch

        n = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if not self.cuda or n < 2:
            return Outcome("skip", f"DDP with 2 processes needs 2 GPUs; this machine has {n}")
        out = self.work / "ddp"
        cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone",
               "--nproc_per_node", "2", "-m", "netscale", "train", "ResNet-20-CIFAR",
               "--data", "digits", "--epochs", "1", "--val-subset", "128", "--batch-size",
               "64", "--seed", "0", "--device", "cuda",
               "--out", str(out), "--json", "--quiet"]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600,
                              env={**os.environ, "PYTHONPATH": _pythonpath()})
        try:
            data = json.loads(proc.stdout[proc.stdout.index("{"):])
        except ValueError:
            last = (proc.stderr.strip().splitlines() or [""])[-1]
            return Outcome("fail", f"torchrun exited {proc.returncode}: {last}")
        ok = (proc.returncode == 0 and data.get("world_size") == 2
              and data.get("status") == "completed" and math.isfinite(data["train_loss"]))
        return Outcome("pass" if ok else "fail",
                       f"world size {data.get('world_size')}, NCCL, train loss "
                       f"{data.get('train_loss', float('nan')):.4f}, "
                       f"{data.get('images_per_sec', 0):,.0f} images/s",
                       {"result": {k: data.get(k) for k in ("world_size", "train_loss",
                                                          "images_per_sec", "status")}})

    def headline_base(self, base: str) -> Outcome:
        p = self.plan
        args = ["bench", "--fit", "--base", base, "--strategies", ",".join(HEADLINE_STRATEGIES),
                "--factors", "1," + ",".join(map(str, HEADLINE_FACTORS)), "--mode", "infer",
                "--device", p.device, "--batch-size", str(p.headline_batch),
                "--precision", "fp32", "--memory-format", "contiguous",
                "--budget", str(p.budget), "--retries", "0",
                "--plot", str(self.work / f"headline-{base}.png"), "--json"]
        if p.headline_resolution:
            args += ["--resolution", str(p.headline_resolution)]
        data = cli_json(args)
        rows = [r for r in data["results"] if r.get("status") == "ok"]
        fit = (data.get("fits") or {}).get("infer") or {}
        r_by = {m: v.get("pearson_r") for m, v in (fit.get("per_metric") or {}).items()}
        table = []
        for r in data["results"]:
            table.append({"base": base, "strategy": r.get("strategy") or "base",
                          "factor": r.get("factor") or 1, "time_ms": r.get("time_ms"),
                          "flops": r.get("flops"), "params": r.get("params"),
                          "acts": r.get("acts"), "resolution": r.get("resolution"),
                          "status": r.get("status")})
        self.headline.append({"base": base, "batch": p.headline_batch, "rows": table,
                              "pearson_r": r_by, "best_metric": fit.get("best_metric")})
        expected = 1 + len(HEADLINE_STRATEGIES) * len(HEADLINE_FACTORS)
        ok = len(rows) >= expected - 1 and bool(r_by)  # the base may be listed once
        rs = ", ".join(f"{m} {v:.3f}" for m, v in r_by.items() if v is not None)
        return Outcome("pass" if ok else "fail",
                       f"{len(rows)} models timed; Pearson r of runtime: {rs}; best predictor "
                       f"{fit.get('best_metric')}", {"fit": fit})

    def run(self, only: set[str] | None, skip: set[str]) -> None:
        steps: list[tuple[str, Callable[[], Outcome], float]] = [
            ("environment", self.environment, 60),
            ("bench", self.bench, 300),
            ("bench-time", self.bench_time, 120),
            ("bench-memory", self.bench_memory, 120),
            ("precision-auto", self.precision_auto, 300),
            ("amp-train", self.amp_train, 600),
            ("compile", self.compile, 600),
            ("channels-last", self.channels_last, 300),
            ("recommend", self.recommend, 600),
            ("study", self.study, 900),
            ("export-torchscript", lambda: self.export("torchscript"), 300),
            ("export-pt2", lambda: self.export("pt2"), 300),
            ("ddp", self.ddp, 600),
        ]
        for base in self.plan.headline_bases:
            steps.append((f"headline-{base}", lambda b=base: self.headline_base(b), 1800))
        for name, fn, limit in steps:
            key = name.split("-")[0] if name.startswith("headline") else name
            if (only and name not in only and key not in only) or name in skip or key in skip:
                continue
            self.run_step(name, fn, limit)




def gc_collect() -> None:
    import gc

    gc.collect()


def _brief(row: dict[str, Any]) -> dict[str, Any]:
    keys = ("time_ms", "iqr_ms", "batch_size", "peak_mem_mib", "mem_method", "time_quality",
            "images_per_s", "setting")
    return {k: row.get(k) for k in keys}


def _study_trials(out: Path) -> list[dict[str, Any]]:
    """(id, status) of the trials in a study's store."""
    import sqlite3

    db = out / "results.sqlite"
    if not db.exists():
        return []
    con = sqlite3.connect(str(db))
    try:
        cols = [r[1] for r in con.execute("PRAGMA table_info(trials)")]
        key = "trial_id" if "trial_id" in cols else cols[0]
        return [{"trial": str(t), "status": str(s)}
                for t, s in con.execute(f"SELECT {key}, status FROM trials")]
    finally:
        con.close()


def _pythonpath() -> str:
    src = str(Path(__file__).resolve().parent.parent / "src")
    old = os.environ.get("PYTHONPATH", "")
    return src + (os.pathsep + old if old else "")


def headline_table(headline: list[dict[str, Any]]) -> str:
    """The paper's comparison as one text table (ms per batch; r per metric)."""
    lines = []
    for block in headline:
        base, rows = block["base"], block["rows"]
        base_row = next((r for r in rows if r["strategy"] == "base"), None)
        lines.append(f"{base}, inference, batch {block['batch']}, fp32 "
                     f"(ms per batch; flops in G multiply-adds per image, acts in M):")
        lines.append(f"{'strategy':>9} {'factor':>6} {'time ms':>9} {'vs base':>7} "
                     f"{'flops G':>8} {'params M':>8} {'acts M':>7}")
        for r in sorted(rows, key=lambda r: (r["factor"], str(r["strategy"]))):
            if r["time_ms"] is None:
                lines.append(f"{r['strategy']:>9} {r['factor']:>6} {r['status']:>9}")
                continue
            rel = (r["time_ms"] / base_row["time_ms"]) if base_row and base_row["time_ms"] \
                else float("nan")
            lines.append(f"{r['strategy']:>9} {'x' + str(r['factor']):>6} "
                         f"{r['time_ms']:>9.2f} {rel:>6.2f}x {r['flops'] / 1e9:>8.2f} "
                         f"{r['params'] / 1e6:>8.2f} {r['acts'] / 1e6:>7.2f}")
        rs = "  ".join(f"{m}: r = {v:.3f}" for m, v in block["pearson_r"].items()
                       if v is not None)
        lines.append(f"Pearson r of runtime against  {rs}  -> best predictor: "
                     f"{block['best_metric']}")
        lines.append("")
    return "\n".join(lines)


def make_plan(args: argparse.Namespace) -> Plan:
    import torch

    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    cuda = device.startswith("cuda")
    if args.quick:
        plan = Plan(device=device, quick=True, model="ResNet-20-CIFAR", resolution=None,
                    batch=4, budget=0.2, headline_bases=("RegNetY-400MF",), headline_batch=2,
                    headline_resolution=32, train_subset=256, train_epochs=1,
                    loss_tolerance=args.loss_tolerance)
    else:
        plan = Plan(device=device, quick=False, model="ResNet-50" if cuda else "RegNetY-400MF",
                    resolution=None, batch=32 if cuda else 8, budget=1.0 if cuda else 2.0,
                    headline_bases=("RegNetY-400MF", "ResNet-50") if cuda
                    else ("RegNetY-400MF",),
                    headline_batch=64 if cuda else 8, headline_resolution=None,
                    train_subset=0, train_epochs=2, loss_tolerance=args.loss_tolerance)
    if args.headline_bases:
        plan.headline_bases = tuple(b for b in args.headline_bases.split(",") if b)
    return plan


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    p.add_argument("--device", help="cpu, cuda or cuda:N (default: cuda if available)")
    p.add_argument("--quick", action="store_true",
                   help="tiny workloads (the CI form; about a minute on a CPU)")
    p.add_argument("--out", default="device_check.json", help="JSON summary (default %(default)s)")
    p.add_argument("--only", default="", help="comma list of steps to run (default: all)")
    p.add_argument("--skip", default="", help="comma list of steps to leave out")
    p.add_argument("--headline-bases", default="",
                   help="bases of the headline table (default RegNetY-400MF, and ResNet-50 "
                        "on a GPU)")
    p.add_argument("--loss-tolerance", type=float, default=0.05,
                   help="max |mean train loss - fp32's| of the bf16/fp16 runs: this value or "
                        "this fraction of fp32's loss, whichever is larger (default 0.05)")
    p.add_argument("--keep", action="store_true", help="keep the working directory")
    args = p.parse_args(argv)
    plan = make_plan(args)
    t0 = time.perf_counter()
    work = Path(tempfile.mkdtemp(prefix="netscale-device-check-"))
    print(f"netscale device check on {plan.device} ({'quick' if plan.quick else 'full'}); "
          f"working directory {work}", flush=True)
    check = DeviceCheck(plan, work)
    try:
        check.run({s for s in args.only.split(",") if s} or None,
                  {s for s in args.skip.split(",") if s})
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    counts = {s: sum(st["status"] == s for st in check.steps) for s in ("pass", "fail", "skip")}
    summary = {"schema": SCHEMA, "device": plan.device, "quick": plan.quick,
               "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "wall_s": time.perf_counter() - t0,
               "counts": counts, "steps": check.steps, "headline": check.headline,
               "plan": {k: v for k, v in vars(plan).items()}}
    if check.headline:
        print()
        print(headline_table(check.headline))
    Path(args.out).write_text(json.dumps(summary, indent=1, default=str) + "\n")
    print(f"{counts['pass']} passed, {counts['fail']} failed, {counts['skip']} skipped in "
          f"{summary['wall_s']:.0f} s; summary written to {args.out}")
    return 1 if counts["fail"] else 0


if __name__ == "__main__":
    sys.exit(main())
