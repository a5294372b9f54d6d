"""Benchmark: netscale's measured counter on every timm and torchvision classification model.

Run (in an environment with timm, torchvision and fvcore, e.g. ``.venv-zoo``):

    PYTHONPATH=src nice -n 10 .venv-zoo/bin/python benchmarks/zoo_counts.py --resume
    PYTHONPATH=src .venv-zoo/bin/python benchmarks/zoo_counts.py --report   # tables from the JSONL

Every architecture (``timm.list_models()`` and ``torchvision.models.list_models(module=
torchvision.models)``) is built with ``pretrained=False`` (no download) at its default input
(timm: ``pretrained_cfg["input_size"]``; torchvision: 224 px, 299 px for inception_v3) and
checked in a forked child process with a time limit, so that a crash or a hang of one model
cannot stop the sweep. One JSON line per model and phase is appended to ``--out`` as soon as it
is known, so a partial run is usable and ``--resume`` continues it.

Phase ``meta`` (every model; the model is built on the ``meta`` device, no weights):

* netscale's count, ``netscale.complexity.count_measured(model, input_size)``: success, or the
  one-line error it raises; its wall time (a fresh child: the shape memo starts empty);
* the reference: ``torch.utils.flop_counter.FlopCounterMode`` on one forward in train mode,
  batch 2 (BatchNorm in train mode needs two samples), under
  ``sdpa_kernel(SDPBackend.MATH)`` so that attention decomposes into the matrix products it
  counts. FlopCounterMode counts from shapes, so it runs on ``meta`` too (``--check-cpu``
  repeats it on real CPU tensors; the totals are identical). Train mode runs the auxiliary
  classifiers of GoogLeNet and Inception-v3, which eval mode (netscale's) skips: they are
  detached from the reference's copy;
* the comparison, after the documented conventions: FlopCounterMode counts 2 flops per
  multiply-add and no bias additions, so ``2 x count_measured(batch 2, count_bias=False)``
  must equal its total exactly. Any difference is split by aten op (both counters report per
  op), which names the op responsible.

Phase ``cpu`` (models up to ``--cpu-max-params`` parameters; real weights, one thread):

* activations against fvcore's ``ActivationCountAnalysis`` (a ``torch.jit`` trace, batch 1,
  eval mode), where fvcore can trace the model; netscale counts max-pool outputs and fvcore does
  not (docs/conventions.md), so equality is checked after removing those;
* the time of one real ``FlopCounterMode`` forward (batch 1, eval, no_grad), to compare with
  the time of netscale's count.

Results: docs/zoo-counts.md.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import json
import math
import multiprocessing as mp
import os
import platform
import random
import re
import statistics
import sys
import time
import traceback
import warnings
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import torch
from torch import nn

DEFAULT_OUT = Path(__file__).resolve().parent / "results" / "zoo_counts.jsonl"

# A fixed subset across families, for CI (tests/zoo/test_counts_subset.py): small members of
# convolutional, attention, hybrid and MLP families of both zoos.
SUBSET = (
    "timm:resnet18", "timm:resnet50d", "timm:resnext26ts", "timm:regnety_002",
    "timm:efficientnet_b0", "timm:mobilenetv3_small_050", "timm:mobilenetv4_conv_small",
    "timm:convnext_atto", "timm:convnextv2_atto", "timm:vit_tiny_patch16_224",
    "timm:deit_tiny_distilled_patch16_224", "timm:swin_tiny_patch4_window7_224",
    "timm:levit_128s", "timm:mixer_s32_224", "timm:resmlp_12_224", "timm:coat_lite_tiny",
    "timm:poolformer_s12", "timm:dla34", "timm:ghostnet_100", "timm:inception_v3",
    "timm:efficientformer_l1", "timm:mobilevit_xxs", "timm:edgenext_xx_small",
    "timm:pit_ti_224", "timm:fastvit_t8", "timm:repvgg_a0",
    "torchvision:resnet18", "torchvision:googlenet", "torchvision:inception_v3",
    "torchvision:mobilenet_v3_small", "torchvision:efficientnet_b0", "torchvision:regnet_y_400mf",
    "torchvision:convnext_tiny", "torchvision:vit_b_32", "torchvision:swin_t",
    "torchvision:shufflenet_v2_x0_5", "torchvision:squeezenet1_0", "torchvision:mnasnet0_5",
)


# ---------------------------------------------------------------------------- the zoos

def list_zoo(zoos: Iterable[str] = ("timm", "torchvision")) -> list[str]:
    """Every model id (``timm:NAME``, ``torchvision:NAME``) of the given zoos."""
    ids: list[str] = []
    if "timm" in zoos:
        import timm

        ids += [f"timm:{n}" for n in timm.list_models()]
    if "torchvision" in zoos:
        import torchvision

        ids += [f"torchvision:{n}"
                for n in torchvision.models.list_models(module=torchvision.models)]
    return ids


def family(model_id: str) -> str:
    """The family of a model: the zoo module that defines it (``timm:byobnet``)."""
    zoo, name = model_id.split(":", 1)
    if zoo == "timm":
        from timm.models import _registry

        return f"timm:{_registry._model_to_module.get(name, name)}"
    import torchvision

    module = torchvision.models.get_model_builder(name).__module__
    return f"torchvision:{module.rsplit('.', 1)[-1]}"


def build(model_id: str, device: str) -> tuple[nn.Module, tuple[int, ...]]:
    """The model (``pretrained=False``, built on ``device``) and its default input shape."""
    zoo, name = model_id.split(":", 1)
    with warnings.catch_warnings(), torch.device(device):
        warnings.simplefilter("ignore")
        if zoo == "timm":
            import timm

            model = timm.create_model(name, pretrained=False)
            size = tuple(int(s) for s in model.pretrained_cfg["input_size"])
        else:
            import torchvision

            model = torchvision.models.get_model(name, weights=None)
            side = 299 if name == "inception_v3" else 224
            size = (3, side, side)
    return model, size


def drop_aux_heads(model: nn.Module) -> None:
    """Detaches the auxiliary classifiers that only train mode runs (GoogLeNet, Inception)."""
    for attr in ("aux1", "aux2", "AuxLogits"):
        if getattr(model, attr, None) is not None:
            setattr(model, attr, None)


# ----------------------------------------------------------------------- counting helpers

def one_line(exc: BaseException) -> str:
    """An exception as one line: its type and the first line of its message."""
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}"[:400]


def netscale_by_op(model: nn.Module, shape: tuple[int, ...], batch: int,
                   count_bias: bool) -> tuple[dict[str, int], dict[str, int], dict[str, int]]:
    """netscale's flops and acts per aten op (and the uncounted ops), eval mode, on meta."""
    from netscale.complexity import measured

    class ByOp(measured._CountingMode):
        def __init__(self) -> None:
            super().__init__(count_bias, [])
            self.op_flops: Counter[str] = Counter()
            self.op_acts: Counter[str] = Counter()

        def __torch_dispatch__(self, func: Any, types: Any, args: tuple[Any, ...] = (),
                               kwargs: dict[str, Any] | None = None) -> Any:
            f0, a0 = self.flops, self.acts
            out = super().__torch_dispatch__(func, types, args, kwargs)
            name = str(func._overloadpacket)
            if self.flops != f0:
                self.op_flops[name] += self.flops - f0
            if self.acts != a0:
                self.op_acts[name] += self.acts - a0
            return out

    meta = model if measured._on_meta(model) else measured.meta_copy(model)
    mode = ByOp()
    args = measured._meta_args(shape, None, batch, torch.float32)
    measured._run_counted(meta, args, mode, backward=False, per_module=False)
    return dict(mode.op_flops), dict(mode.op_acts), dict(mode.uncounted)


def reference_flops(model: nn.Module, shape: tuple[int, ...], batch: int,
                    device: str) -> tuple[int, dict[str, int]]:
    """FlopCounterMode's total and per-op flops, train mode, math attention backend."""
    from torch.nn.attention import SDPBackend, sdpa_kernel
    from torch.utils.flop_counter import FlopCounterMode

    was = [(m, m.training) for m in model.modules()]
    model.train()
    try:
        x = (torch.empty if device == "meta" else torch.randn)((batch, *shape), device=device)
        counter = FlopCounterMode(display=False)
        with sdpa_kernel(SDPBackend.MATH), torch.device(device), counter:
            model(x)
    finally:
        for m, t in was:
            m.__dict__["training"] = t
    by_op = {str(k): int(v) for k, v in counter.get_flop_counts().get("Global", {}).items()}
    return int(counter.get_total_flops()), by_op


def compare_flops(ns_by_op: dict[str, int], ref_by_op: dict[str, int]) -> dict[str, int]:
    """Per op, 2 x netscale's multiply-adds minus FlopCounterMode's flops (nonzero only)."""
    ops = set(ns_by_op) | set(ref_by_op)
    diff = {op: 2 * ns_by_op.get(op, 0) - ref_by_op.get(op, 0) for op in ops}
    return {op: d for op, d in sorted(diff.items()) if d}


# ----------------------------------------------------------------------------- the phases

def phase_meta(model_id: str, send: Callable[[dict[str, Any]], None]) -> None:
    """Count on meta with netscale and FlopCounterMode; compare per op."""
    from netscale.complexity import count_measured, measured

    try:
        model, shape = build(model_id, "meta")
        built = "meta"
    except Exception as exc:  # the zoo's constructor cannot build on meta: real weights
        send({"meta_build_error": one_line(exc)})
        model, shape = build(model_id, "cpu")
        built = "cpu"
    send({"family": family(model_id), "input_size": list(shape), "built_on": built})
    t0 = time.perf_counter()
    try:
        rec = count_measured(model, shape, name=model_id)
    except Exception as exc:
        send({"count_s": time.perf_counter() - t0, "status": "error",
              "error": one_line(exc), "error_lines": len(str(exc).strip().splitlines())})
        return
    send({"count_s": time.perf_counter() - t0, "status": "ok", "flops": rec.flops,
          "params": rec.params, "acts": rec.acts, "uncounted": rec.uncounted})
    ns_flops, _, _ = netscale_by_op(model, shape, 2, count_bias=False)
    send({"ns_b2_nobias_by_op": ns_flops})
    t0 = time.perf_counter()
    try:
        ref_model = model if built == "meta" else measured.meta_copy(model)
        drop_aux_heads(ref_model)
        ref_total, ref_by_op = reference_flops(ref_model, shape, 2, "meta")
    except Exception as exc:
        send({"ref_s": time.perf_counter() - t0, "ref_error": one_line(exc)})
        return
    diff = compare_flops(ns_flops, ref_by_op)
    send({"ref_s": time.perf_counter() - t0, "ref_flops_b2": ref_total,
          "ref_by_op": ref_by_op, "flops_equal": 2 * sum(ns_flops.values()) == ref_total,
          "flops_diff_by_op": diff})


def phase_cpu(model_id: str, send: Callable[[dict[str, Any]], None]) -> None:
    """Real weights: fvcore's activations and the time of one real FlopCounterMode forward."""
    from torch.utils.flop_counter import FlopCounterMode

    model, shape = build(model_id, "cpu")
    model.eval()
    x = torch.randn((1, *shape))
    t0 = time.perf_counter()
    try:
        with torch.no_grad(), FlopCounterMode(display=False) as counter:
            model(x)
        send({"fcm_forward_s": time.perf_counter() - t0,
              "fcm_forward_flops": int(counter.get_total_flops())})
    except Exception as exc:
        send({"fcm_forward_error": one_line(exc)})
    _, ns_acts, _ = netscale_by_op(model, shape, 1, count_bias=True)
    send({"ns_acts_by_op": ns_acts})
    try:
        from fvcore.nn import ActivationCountAnalysis

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            analysis = ActivationCountAnalysis(model, (x,))
            analysis.unsupported_ops_warnings(False).uncalled_modules_warnings(False)
            analysis.tracer_warnings("none")
            total = int(analysis.total())
            send({"fvcore_acts": total,
                  "fvcore_by_op": {k: int(v) for k, v in analysis.by_operator().items()},
                  "fvcore_unsupported": dict(analysis.unsupported_ops())})
    except Exception as exc:
        send({"fvcore_error": one_line(exc)})


PHASES: dict[str, Callable[[str, Callable[[dict[str, Any]], None]], None]] = {
    "meta": phase_meta, "cpu": phase_cpu}


def _child(phase: str, model_id: str, conn: Any) -> None:
    torch.set_num_threads(1)
    warnings.simplefilter("ignore")
    try:
        PHASES[phase](model_id, conn.send)
    except Exception as exc:
        conn.send({"phase_error": one_line(exc),
                   "phase_error_where": traceback.format_exc().strip().splitlines()[-3:]})
    conn.close()


def run_one(phase: str, model_id: str, timeout: float) -> dict[str, Any]:
    """One phase of one model in a forked child, with a time limit; its merged messages."""
    ctx = mp.get_context("fork")
    parent, child = ctx.Pipe(duplex=False)
    proc = ctx.Process(target=_child, args=(phase, model_id, child), daemon=True)
    t0 = time.perf_counter()
    proc.start()
    child.close()
    out: dict[str, Any] = {"id": model_id, "phase": phase}
    deadline = t0 + timeout
    while True:
        left = deadline - time.perf_counter()
        if left <= 0:
            out["timeout"] = timeout
            proc.kill()
            break
        if parent.poll(min(left, 0.05)):
            try:
                out.update(parent.recv())
            except EOFError:
                break
        elif not proc.is_alive() and not parent.poll(0):
            break
    proc.join(5)
    if proc.exitcode not in (0, None) and "timeout" not in out:
        out["exitcode"] = proc.exitcode
    out["wall_s"] = round(time.perf_counter() - t0, 3)
    return out


# ------------------------------------------------------------------------------ the sweep

def select(args: argparse.Namespace) -> list[str]:
    ids = list(SUBSET) if args.subset else list_zoo(args.zoos.split(","))
    if args.models:
        wanted = args.models.split(",")
        ids = [i for i in wanted if ":" in i] + [i for i in ids if i.split(":", 1)[1] in wanted]
    if args.families:
        fams = args.families.split(",")
        ids = [i for i in ids if any(re.fullmatch(f.replace("*", ".*"), family(i))
                                     or f == family(i).split(":", 1)[1] for f in fams)]
    if args.limit:
        ids = ids[: args.limit]
    return ids


def load(path: Path) -> dict[tuple[str, str], dict[str, Any]]:
    rows: dict[tuple[str, str], dict[str, Any]] = {}
    if path.exists():
        for line in path.read_text().splitlines():
            if line.strip():
                try:
                    row = json.loads(line)
                except json.JSONDecodeError:  # a line cut by a kill: run it again
                    continue
                rows[(row["id"], row["phase"])] = row
    return rows


def preload(zoos: Iterable[str] = ("timm", "torchvision")) -> None:
    """Imports what every child needs once, before forking (a child then starts in ms)."""
    import importlib

    for name in ("netscale.complexity.measured", "torch.utils.flop_counter",
                 "torch.nn.attention", *zoos, "fvcore.nn"):
        with contextlib.suppress(ImportError):
            importlib.import_module(name)


def sweep(args: argparse.Namespace) -> None:
    preload(args.zoos.split(","))
    ids = select(args)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    done = load(out) if args.resume else {}
    if not args.resume and out.exists():
        out.unlink()
    write_environment(out)
    phases = args.phases.split(",")
    if not args.subset and not args.models:  # a partial run covers every family evenly
        random.Random(0).shuffle(ids)
    sample = set(ids[:: args.cpu_every])
    todo = [(i, ph) for i in ids for ph in phases
            if (i, ph) not in done and (ph != "cpu" or i in sample)]
    print(f"{len(todo)} model-phases to run; {len(done)} done", flush=True)
    for n, (model_id, phase) in enumerate(todo, 1):
        meta = done.get((model_id, "meta"), {})
        if phase == "cpu" and meta.get("params", 0) > args.cpu_max_params:
            row = {"id": model_id, "phase": phase,
                   "skipped": f"{meta['params']:,} params > --cpu-max-params"}
        else:
            row = run_one(phase, model_id, args.timeout)
        _append(out, row)
        done[(model_id, phase)] = row
        if phase == "meta":
            flag = "TIMEOUT" if "timeout" in row else row.get("status", "?")
            eq = row.get("flops_equal")
            print(f"[{n}/{len(todo)} meta] {model_id}: {flag}"
                  f"{'' if eq is None else (' equal' if eq else ' DIFF')} "
                  f"{row.get('count_s', 0):.2f}s {row.get('error', '')}", flush=True)
        else:
            print(f"[{n}/{len(todo)} cpu] {model_id}: fvcore "
                  f"{row.get('fvcore_acts', row.get('fvcore_error', row.get('skipped', '-')))} "
                  f"{row.get('fcm_forward_s', 0):.2f}s", flush=True)


def _append(path: Path, row: dict[str, Any]) -> None:
    with path.open("a") as fh:
        fh.write(json.dumps(row, default=str) + "\n")
        fh.flush()
        os.fsync(fh.fileno())


def environment() -> dict[str, Any]:
    import importlib.metadata as md

    def version(name: str) -> str:
        try:
            return md.version(name)
        except md.PackageNotFoundError:
            return "not installed"

    from netscale.bench.env import cpu_model

    cpu = cpu_model()
    return {"date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "python": platform.python_version(), "torch": torch.__version__,
            "torchvision": version("torchvision"), "timm": version("timm"),
            "fvcore": version("fvcore"), "netscale": _netscale_version(),
            "cpu": cpu, "cores": os.cpu_count(), "platform": platform.platform()}


def _netscale_version() -> str:
    """netscale's version and, in a git checkout, the commit."""
    import subprocess

    import netscale

    version = str(getattr(netscale, "__version__", "?"))
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                                text=True, cwd=Path(__file__).resolve().parent,
                                timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        commit = ""
    return f"{version} ({commit})" if commit else version


def write_environment(out: Path) -> None:
    env_path = out.with_suffix(".env.json")
    envs = json.loads(env_path.read_text()) if env_path.exists() else []
    envs.append({**environment(), "argv": sys.argv[1:]})
    env_path.write_text(json.dumps(envs, indent=1) + "\n")


# ----------------------------------------------------------------------------- the report

def _pct(n: int, d: int) -> str:
    return f"{n}/{d} ({100 * n / d:.1f} %)" if d else "0/0"


def _quantiles(xs: list[float]) -> tuple[float, float]:
    xs = sorted(xs)
    if not xs:
        return math.nan, math.nan
    p90 = xs[min(len(xs) - 1, math.ceil(0.9 * len(xs)) - 1)]
    return statistics.median(xs), p90


def explain(row: dict[str, Any]) -> str:
    """The op(s) that explain a flops difference, as one label."""
    diff = row.get("flops_diff_by_op", {})
    return ", ".join(sorted(diff)) or "-"


#: ops that run matrix products but that fvcore's trace sees as one op without a handler
FVCORE_BLIND = frozenset({"scaled_dot_product_attention", "lstm", "gru", "rnn_tanh",
                          "rnn_relu", "_native_multi_head_attention",
                          "_convolution_mode"})  # convolutions with padding="same"


def acts_verdict(meta: dict[str, Any], cpu: dict[str, Any]) -> str:
    """How netscale's activations compare with fvcore's."""
    if "fvcore_acts" not in cpu:
        return "fvcore failed"
    ns_by_op = cpu.get("ns_acts_by_op", {})
    ns = sum(ns_by_op.values())
    fv = cpu["fvcore_acts"]
    if ns == fv:
        return "equal"
    pools = sum(v for k, v in ns_by_op.items() if "max_pool" in k)
    if ns - pools == fv:
        return "equal after max-pool"
    # fvcore's trace sees these as one op each and counts no activations for them; netscale
    # sees the matrix products they run (attention's two products, an LSTM's gate products)
    skipped = sorted(k for k in cpu.get("fvcore_unsupported", {})
                     if k.split("::")[-1] in FVCORE_BLIND)
    if skipped:
        # batched products: netscale's bmm outputs against fvcore's bmm/matmul/einsum outputs
        fv_by_op = cpu.get("fvcore_by_op", {})
        ns_batched = sum(ns_by_op.get(k, 0) for k in ("aten.bmm", "aten.baddbmm"))
        fv_batched = sum(fv_by_op.get(k, 0) for k in ("bmm", "matmul", "einsum"))
        names = ", ".join(k.split("::")[-1] for k in skipped)
        if ns - pools - ns_batched == fv - fv_batched and "lstm" not in names:
            return (f"equal apart from batched products (fvcore sees {names} as one op)"
                    + (" and max-pool" if pools else ""))
        return f"fvcore counts no activations for {names}" + (" (and max-pool)" if pools else "")
    return "differs"


def report(path: Path) -> str:
    rows = load(path)
    metas = {i: r for (i, p), r in rows.items() if p == "meta"}
    cpus = {i: r for (i, p), r in rows.items() if p == "cpu"}
    lines: list[str] = []
    n = len(metas)
    ok = [r for r in metas.values() if r.get("status") == "ok"]
    err = [r for r in metas.values() if r.get("status") == "error"]
    hung = [r for r in metas.values() if "timeout" in r and "status" not in r]
    crashed = [r for r in metas.values() if "status" not in r and "timeout" not in r]
    multi = [r for r in err if r.get("error_lines", 1) > 1]
    lines.append(f"Models swept: {n} (timm {sum(i.startswith('timm:') for i in metas)}, "
                 f"torchvision {sum(i.startswith('torchvision:') for i in metas)}).")
    lines.append(f"- counted: {_pct(len(ok), n)}; one-line error: {_pct(len(err), n)} "
                 f"(multi-line messages: {len(multi)}); time limit hit: {len(hung)}; "
                 f"other failure: {len(crashed)}")
    built_cpu = [r for r in metas.values() if r.get("built_on") == "cpu"]
    lines.append(f"- built on the meta device: {n - len(built_cpu)}; the zoo's constructor "
                 f"needed real tensors (counted on a meta copy): {len(built_cpu)}")
    compared = [r for r in ok if "flops_equal" in r]
    equal = [r for r in compared if r["flops_equal"]]
    ref_err = [r for r in ok if "ref_error" in r or ("flops_equal" not in r)]
    lines.append(f"- flops compared with FlopCounterMode: {len(compared)} "
                 f"(reference failed: {len(ref_err)}); equal after conventions: "
                 f"{_pct(len(equal), len(compared))}")
    lines.append("")
    # differences by family and op
    by_fam: dict[str, Counter[str]] = defaultdict(Counter)
    examples: dict[tuple[str, str], list[str]] = defaultdict(list)
    for r in compared:
        if not r["flops_equal"]:
            label = explain(r)
            by_fam[r.get("family", "?")][label] += 1
            examples[(r.get("family", "?"), label)].append(r["id"].split(":", 1)[1])
    if by_fam:
        lines.append("| family | models | op(s) with a different count | models (examples) |")
        lines.append("|---|---|---|---|")
        for fam in sorted(by_fam):
            for label, cnt in by_fam[fam].most_common():
                ex = examples[(fam, label)]
                lines.append(f"| {fam} | {cnt} | {label} | {', '.join(ex[:4])}"
                             f"{' ...' if len(ex) > 4 else ''} |")
        lines.append("")
    # op-level signed differences
    op_sum: Counter[str] = Counter()
    op_models: Counter[str] = Counter()
    for r in compared:
        for op, d in r.get("flops_diff_by_op", {}).items():
            op_sum[op] += 1 if d > 0 else 0
            op_models[op] += 1
    if op_models:
        lines.append("| op | models | netscale higher in | FlopCounterMode higher in |")
        lines.append("|---|---|---|---|")
        for op, cnt in op_models.most_common():
            lines.append(f"| {op} | {cnt} | {op_sum[op]} | {cnt - op_sum[op]} |")
        lines.append("")
    if err or hung or crashed:
        lines.append("| model | result |")
        lines.append("|---|---|")
        for r in err:
            lines.append(f"| {r['id']} | {r['error']} |")
        for r in hung:
            lines.append(f"| {r['id']} | time limit ({r['timeout']} s) |")
        for r in crashed:
            lines.append(f"| {r['id']} | {r.get('phase_error', r.get('exitcode', '?'))} |")
        lines.append("")
    # coverage by family
    fam_rows: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0, 0])
    for r in metas.values():
        row = fam_rows[r.get("family", "?")]
        row[0] += 1
        row[1] += r.get("status") == "ok"
        row[2] += "flops_equal" in r
        row[3] += bool(r.get("flops_equal"))
    lines.append("<details><summary>By family: swept, counted, compared, equal</summary>")
    lines.append("")
    lines.append("| family | swept | counted | compared | equal |")
    lines.append("|---|---|---|---|---|")
    for fam, (a, b, c, d) in sorted(fam_rows.items()):
        lines.append(f"| {fam} | {a} | {b} | {c} | {d} |")
    lines.append("")
    lines.append("</details>")
    lines.append("")
    # uncounted ops by frequency
    freq: Counter[str] = Counter()
    calls: Counter[str] = Counter()
    for r in ok:
        for op, c in r.get("uncounted", {}).items():
            freq[op] += 1
            calls[op] += c
    lines.append(f"Ops netscale lists as uncounted, by the number of models (of {len(ok)}):")
    lines.append("")
    lines.append("| op | models | calls |")
    lines.append("|---|---|---|")
    for op, c in freq.most_common(25):
        lines.append(f"| {op} | {c} | {calls[op]} |")
    lines.append("")
    # activations
    both = [(metas[i], cpus[i]) for i in cpus if i in metas and metas[i].get("status") == "ok"
            and "skipped" not in cpus[i] and "timeout" not in cpus[i]]
    verdicts = Counter(acts_verdict(m, c) for m, c in both)
    skipped = [c for c in cpus.values() if "skipped" in c]
    cpu_timeout = [c for c in cpus.values() if "timeout" in c]
    lines.append(f"Activations vs fvcore (phase cpu: {len(cpus)} models; skipped for size "
                 f"{len(skipped)}; time limit {len(cpu_timeout)}):")
    lines.append("")
    lines.append("| result | models |")
    lines.append("|---|---|")
    for v, c in verdicts.most_common():
        lines.append(f"| {v} | {c} |")
    lines.append("")
    # time
    lines.append("Time per model:")
    lines.append("")
    ns_t = [r["count_s"] for r in ok]
    ref_t = [r["ref_s"] for r in compared]
    med, p90 = _quantiles(ns_t)
    lines.append(f"- netscale count (batch 1, meta, fresh process): median {med * 1e3:.0f} ms, "
                 f"p90 {p90 * 1e3:.0f} ms over {len(ns_t)} models")
    med, p90 = _quantiles(ref_t)
    lines.append(f"- FlopCounterMode forward on meta (batch 2, train): median {med * 1e3:.0f} ms, "
                 f"p90 {p90 * 1e3:.0f} ms")
    pairs = [(metas[i]["count_s"], c["fcm_forward_s"]) for i, c in cpus.items()
             if "fcm_forward_s" in c and metas.get(i, {}).get("status") == "ok"]
    if pairs:
        med, p90 = _quantiles([b for _, b in pairs])
        ratios = [b / a for a, b in pairs if a > 0]
        rmed, rp90 = _quantiles(ratios)
        nmed, np90 = _quantiles([a for a, _ in pairs])
        lines.append(f"- real FlopCounterMode forward (CPU, batch 1, eval, 1 thread), "
                     f"{len(pairs)} models: median {med * 1e3:.0f} ms, p90 {p90 * 1e3:.0f} ms; "
                     f"netscale on the same models: median {nmed * 1e3:.0f} ms, "
                     f"p90 {np90 * 1e3:.0f} ms; forward / count time ratio: median "
                     f"{rmed:.1f}x, p90 {rp90:.1f}x, count faster in "
                     f"{_pct(sum(r > 1 for r in ratios), len(ratios))}")
    lines.append("")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    p.add_argument("--out", default=str(DEFAULT_OUT), help="JSONL results (appended)")
    p.add_argument("--resume", action="store_true", help="skip models already in --out")
    p.add_argument("--limit", type=int, default=0, help="only the first N models")
    p.add_argument("--families", default="",
                   help="comma list of families (timm module or torchvision module name, "
                        "e.g. resnet,vision_transformer,timm:byobnet)")
    p.add_argument("--models", default="", help="comma list of model names or ids")
    p.add_argument("--subset", action="store_true", help="the fixed CI subset only")
    p.add_argument("--zoos", default="timm,torchvision")
    p.add_argument("--phases", default="meta,cpu", help="meta, cpu or both (in that order)")
    p.add_argument("--timeout", type=float, default=180.0, help="seconds per model and phase")
    p.add_argument("--cpu-max-params", type=int, default=350_000_000,
                   help="phase cpu skips larger models (real weights; memory)")
    p.add_argument("--cpu-every", type=int, default=12,
                   help="phase cpu runs every K-th model of the list (a fixed sample)")
    p.add_argument("--report", action="store_true", help="print the tables from --out")
    args = p.parse_args(argv)
    if args.report:
        print(report(Path(args.out)))
        return
    sweep(args)


if __name__ == "__main__":
    main()
