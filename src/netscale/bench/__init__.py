"""Runtime measurement (`netscale bench`) and the runtime model.

* :func:`bench_spec` / :func:`bench_module`: time inference or a training step with a careful
  method (warm-up, adaptive blocks, median + IQR, noisy flag), see :mod:`.timing`;
* :class:`BenchResult`: one JSON/CSV-serialisable result row;
* :func:`fit_runtime` -> :class:`RuntimeModel`: the one runtime model, runtime vs flops /
  params / acts (Pearson r, per-metric and joint fits, prediction intervals);
* :func:`generate_models`, :func:`run_analysis`, :func:`plot_runtime`: the runtime analysis.

Flops are multiply-adds (1 MAC = 1 flop), as everywhere in netscale.
"""

from netscale.bench.analysis import (
    Analysis,
    BenchModel,
    format_fit,
    generate_models,
    plot_runtime,
    run_analysis,
)
from netscale.bench.env import BenchEnv, collect_env
from netscale.bench.fit import (
    METRICS,
    JointFit,
    MetricFit,
    RuntimeModel,
    fit_metric,
    fit_runtime,
    pearson_r,
)
from netscale.bench.harness import (
    BenchConfig,
    bench_module,
    bench_spec,
    empty_model,
    resolve_device,
)
from netscale.bench.result import (
    CSV_FIELDS,
    MODES,
    SCHEMA,
    BenchResult,
    load_results,
    to_csv,
    to_json,
    write_results,
)
from netscale.bench.timing import Measurement, Stats, TimingPolicy, measure_runtime, summarize

__all__ = [
    "CSV_FIELDS",
    "METRICS",
    "MODES",
    "SCHEMA",
    "Analysis",
    "BenchConfig",
    "BenchEnv",
    "BenchModel",
    "BenchResult",
    "JointFit",
    "Measurement",
    "MetricFit",
    "RuntimeModel",
    "Stats",
    "TimingPolicy",
    "bench_module",
    "bench_spec",
    "collect_env",
    "empty_model",
    "fit_metric",
    "fit_runtime",
    "format_fit",
    "generate_models",
    "load_results",
    "measure_runtime",
    "pearson_r",
    "plot_runtime",
    "resolve_device",
    "run_analysis",
    "summarize",
    "to_csv",
    "to_json",
    "write_results",
]
