"""Fuzzed inputs for every subcommand (Hypothesis): malformed specs, study configs, pycls
YAMLs, IDX files, image folders, checkpoints and flag values.

The property everywhere: netscale either accepts the input (exit 0) or refuses it with exit
code 2 and exactly one line on stderr; it never raises (a traceback), and a refusal leaves
no file behind. Inputs that are always invalid must be refused. Commands run in-process
(fast); one test runs the real `python -m netscale` under a timeout.
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import torch
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

SRC = Path(__file__).resolve().parents[1] / "src"
# NETSCALE_FUZZ_EXAMPLES=500 for a deeper (random) search; the default run is fixed and fast.
_N = int(os.environ.get("NETSCALE_FUZZ_EXAMPLES", "20"))
FUZZ = settings(max_examples=_N, deadline=None, derandomize=_N == 20,
                suppress_health_check=[HealthCheck.function_scoped_fixture,
                                       HealthCheck.too_slow])

# Junk of every JSON/YAML type.
junk = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-10**15, max_value=10**15),
    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=8),
    st.lists(st.integers(-3, 3), max_size=3), st.dictionaries(st.text(max_size=3),
                                                              st.integers(), max_size=2),
)


@contextmanager
def workdir() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="netscale-fuzz-") as d:
        old = os.getcwd()
        os.chdir(d)
        try:
            yield Path(d)
        finally:
            os.chdir(old)


def _files(d: Path) -> set[str]:
    return {str(p.relative_to(d)) for p in d.rglob("*")}


def check(run_cli: Callable[..., tuple[int, str, str]], d: Path, *args: Any,
          must_fail: bool = False) -> int:
    """Runs netscale ARGS in ``d``; asserts the property; returns the exit code."""
    before = _files(d)
    code, _, err = run_cli(*args)
    assert "Traceback" not in err
    if must_fail or code != 0:
        assert code == 2, f"exit {code}: {err!r}"
        assert err.count("\n") == 1 and err.startswith("netscale"), err
        assert _files(d) == before, "a refused command left files behind"
    return code


def check_garbage_file(run_cli: Callable[..., tuple[int, str, str]], name: str,
                       content: str | bytes, command: str) -> None:
    """``netscale COMMAND NAME`` on a file holding ``content`` must fail cleanly."""
    with workdir() as d:
        if isinstance(content, bytes):
            (d / name).write_bytes(content)
        else:
            (d / name).write_text(content)
        check(run_cli, d, command, name, must_fail=True)


# ----------------------------------------------------------------------------- flag values

bad_number = st.one_of(
    st.sampled_from(["", " ", "nan", "inf", "-inf", "abc", "1e999", "0x10", "1,,2", "--"]),
    st.floats(max_value=0, allow_nan=False).map(repr),
    st.text(alphabet="abcxyz!@#", min_size=1, max_size=5),
)
FLAG_CASES = [
    (["scale", "ResNet-20-CIFAR", "--factor"], bad_number),
    (["scale", "ResNet-20-CIFAR", "--factors"], bad_number),
    (["scale", "ResNet-20-CIFAR", "--target-flops"], bad_number),
    (["scale", "ResNet-20-CIFAR", "--factor", "2", "--tolerance"], bad_number),
    (["info", "ResNet-20-CIFAR", "--resolution"], bad_number),
    (["bench", "ResNet-20-CIFAR", "--budget"], bad_number),
    (["bench", "ResNet-20-CIFAR", "--threads"], st.one_of(bad_number, st.integers(
        min_value=10**4, max_value=10**9).map(str))),
    (["bench", "ResNet-20-CIFAR", "--batch-size"], bad_number),
    (["train", "ResNet-20-CIFAR", "--data", "digits", "--lr"], bad_number),
    (["train", "ResNet-20-CIFAR", "--data", "digits", "--epochs"], bad_number),
    (["fit", ".", "--n-boot"], st.one_of(bad_number, st.integers(min_value=10**6).map(str))),
    (["fit", ".", "--level"], st.one_of(bad_number, st.floats(min_value=1).map(repr))),
    (["recommend", "ResNet-20-CIFAR", "--no-measure", "--target-flops"], bad_number),
    (["recommend", "ResNet-20-CIFAR", "--no-measure", "--target-flops", "2x",
      "--max-latency"], bad_number),
    (["study", "s.yaml", "--workers"], st.one_of(bad_number, st.integers(
        min_value=10**4).map(str))),
]


@pytest.mark.parametrize("prefix,values", FLAG_CASES, ids=lambda v: " ".join(v)
                         if isinstance(v, list) else "")
def test_bad_flag_values(run_cli, prefix: list[str], values: Any) -> None:
    @FUZZ
    @given(v=values)
    def inner(v: str) -> None:
        with workdir() as d:
            check(run_cli, d, *prefix, v, must_fail=True)

    inner()


# ----------------------------------------------------------------------------- spec files

GOOD_SPEC = {
    "name": "fz", "family": "cifar", "resolution": 32, "num_classes": 10, "in_channels": 3,
    "stem": {"type": "cifar", "width": 16},
    "stages": [{"block": "basic", "depth": 1, "width": 16, "stride": 1}],
}
SPEC_KEYS = ["name", "resolution", "num_classes", "in_channels", "stem", "stages",
             "activation", "dropout", "head_width", "stem.type", "stem.width",
             "stages.0.depth", "stages.0.width", "stages.0.stride", "stages.0.block",
             "stages.0.bottleneck", "stages.0.group_width", "stages.0.kernel"]


def _mutate(d: dict[str, Any], key: str, value: Any) -> dict[str, Any]:
    d = json.loads(json.dumps(d))
    parts = key.split(".")
    target: Any = d
    for p in parts[:-1]:
        target = target[int(p)] if isinstance(target, list) else target[p]
    if isinstance(target, list):
        target[int(parts[-1])] = value
    else:
        target[parts[-1]] = value
    return d


@FUZZ
@given(key=st.sampled_from(SPEC_KEYS), value=junk, fmt=st.sampled_from(["yaml", "json"]))
def test_fuzz_spec_files(run_cli, key: str, value: Any, fmt: str) -> None:
    spec = _mutate(GOOD_SPEC, key, value)
    with workdir() as d:
        p = d / f"s.{fmt}"
        p.write_text(yaml.safe_dump(spec) if fmt == "yaml" else json.dumps(spec))
        check(run_cli, d, "info", p.name)
        check(run_cli, d, "scale", p.name, "--factor", "2")


@FUZZ
@given(text=st.text(max_size=60))
def test_fuzz_spec_text(run_cli, text: str) -> None:
    check_garbage_file(run_cli, "s.yaml", text, "info")


# ----------------------------------------------------------------------------- pycls YAMLs

PYCLS = {"MODEL": {"TYPE": "regnet", "NUM_CLASSES": 10},
         "REGNET": {"DEPTH": 10, "W0": 24, "WA": 24.0, "WM": 2.5, "GROUP_W": 8},
         "TRAIN": {"IM_SIZE": 32}}


@FUZZ
@given(key=st.sampled_from(["MODEL.TYPE", "MODEL.NUM_CLASSES", "REGNET.DEPTH", "REGNET.W0",
                            "REGNET.WA", "REGNET.WM", "REGNET.GROUP_W", "TRAIN.IM_SIZE",
                            "REGNET.SE_ON", "REGNET.STRIDE", "MODEL"]),
       value=junk)
def test_fuzz_pycls(run_cli, key: str, value: Any) -> None:
    with workdir() as d:
        (d / "p.yaml").write_text(yaml.safe_dump(_mutate(PYCLS, key, value)))
        check(run_cli, d, "info", "p.yaml")


# ----------------------------------------------------------------------------- study configs

GOOD_STUDY = {"name": "fz", "out": "st", "bases": ["ResNet-20-CIFAR"], "strategies": ["d"],
              "factors": [1, 2], "train": False, "bench": {"enabled": False},
              "resources": {"cpus": 1}}
STUDY_KEYS = ["name", "out", "bases", "strategies", "factors", "rounding", "tolerance",
              "resolution_multiple", "seeds", "train", "retries", "resources",
              "resources.cpus", "bench", "bench.enabled", "bench.batch_size", "bench.budget",
              "bench.mode", "bench.threads", "base_overrides", "description", "data",
              "recipe", "bases.0", "factors.0"]


@FUZZ
@given(key=st.sampled_from(STUDY_KEYS), value=junk)
def test_fuzz_study_configs(run_cli, key: str, value: Any) -> None:
    cfg = _mutate(GOOD_STUDY, key, value)
    with workdir() as d:
        (d / "s.yaml").write_text(yaml.safe_dump(cfg))
        check(run_cli, d, "study", "s.yaml", "--dry-run")


# ----------------------------------------------------------------------------- data folders


@FUZZ
@given(images=st.binary(max_size=64), labels=st.binary(max_size=32),
       split=st.sampled_from(["train", "t10k"]))
def test_fuzz_idx_folders(run_cli, images: bytes, labels: bytes, split: str) -> None:
    with workdir() as d:
        (d / "data").mkdir()
        (d / "data" / f"{split}-images-idx3-ubyte").write_bytes(images)
        (d / "data" / f"{split}-labels-idx1-ubyte").write_bytes(labels)
        check(run_cli, d, "train", "ResNet-20-CIFAR", "--data", "data", "--epochs", "1",
              "--out", "o", "-q", must_fail=True)


@FUZZ
@given(layout=st.dictionaries(st.sampled_from(["a", "b", "c"]),
                              st.lists(st.binary(max_size=24), max_size=2), max_size=3))
def test_fuzz_image_folders(run_cli, layout: dict[str, list[bytes]]) -> None:
    with workdir() as d:
        (d / "data").mkdir()
        for cls, items in layout.items():
            (d / "data" / cls).mkdir()
            for i, blob in enumerate(items):
                (d / "data" / cls / f"{i}.png").write_bytes(blob)
        check(run_cli, d, "train", "ResNet-20-CIFAR", "--data", "data", "--epochs", "1",
              "--out", "o", "-q", must_fail=True)


# ----------------------------------------------------------------------------- checkpoints


@pytest.fixture(scope="module")
def checkpoint_payload() -> dict[str, Any]:
    from netscale.models import build_model
    from netscale.specs import resolve_spec

    spec = resolve_spec("ResNet-20-CIFAR").replace(in_channels=1)
    return {"format": "netscale-checkpoint", "format_version": 1, "epoch": 1,
            "model": build_model(spec).state_dict(), "spec": json.dumps(spec.to_dict()),
            "recipe": "{}", "data": json.dumps({"name": "digits", "val_subset": 16}),
            "history": "[]"}


@FUZZ
@given(key=st.sampled_from(["format", "format_version", "epoch", "model", "spec", "recipe",
                            "data", "history", "extra"]),
       value=st.one_of(junk, junk.map(lambda v: json.dumps(v, allow_nan=True)),
                       st.text(max_size=10)))
def test_fuzz_checkpoints(run_cli, checkpoint_payload: dict[str, Any], key: str,
                          value: Any) -> None:
    with workdir() as d:
        torch.save({**checkpoint_payload, key: value}, d / "c.pt")
        check(run_cli, d, "eval", "c.pt", "--batch-size", "16")


@FUZZ
@given(blob=st.binary(max_size=200))
def test_fuzz_checkpoint_bytes(run_cli, blob: bytes) -> None:
    check_garbage_file(run_cli, "c.pt", blob, "eval")


# ----------------------------------------------------------------------------- real processes


@settings(max_examples=4, deadline=None, derandomize=True)
@given(argv=st.sampled_from([
    ["bench", "ResNet-20-CIFAR", "--threads", "100000"],
    ["bench", "ResNet-20-CIFAR", "--batch-size", "1000000", "--retry-oom", "--budget", "0.5"],
    ["train", "ResNet-20-CIFAR", "--data", "digits", "--threads", "100000"],
    ["scale", "ResNet-20-CIFAR", "--factors", ""],
    ["fit", ".", "--n-boot", "100000000"],
]))
def test_real_process_within_time_bound(argv: list[str]) -> None:
    """The real entry point: exit 2, one line, no traceback, no crash, within 120 s."""
    with workdir() as d:
        r = subprocess.run([sys.executable, "-m", "netscale", *argv], cwd=d, timeout=120,
                           capture_output=True, text=True,
                           env={**os.environ, "PYTHONPATH": str(SRC)})
        assert r.returncode == 2, r.stderr
        assert r.stderr.count("\n") == 1 and "Traceback" not in r.stderr
        assert _files(d) == set()


# ----------------------------------------------------------------------------- hostile YAML


def _alias_bomb(depth: int, width: int) -> str:
    lines = ["l0: &l0 [x]"]
    for i in range(1, depth + 1):
        lines.append(f"l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * width)}]")
    return "\n".join(lines) + "\n"


hostile_yaml = st.one_of(
    st.builds(_alias_bomb, st.integers(6, 12), st.integers(8, 12)),  # >= 8**6 values
    st.just("a: &a [1, *a]\n"),  # refers to itself
    st.builds(lambda k, a, b: f"{k}: {a}\n{k}: {b}\n", st.sampled_from(
        ["factors", "bases", "name", "tolerance"]), st.integers(1, 9), st.integers(1, 9)),
    st.integers(400, 5000).map(lambda n: f"tolerance: 1{'0' * n}\n"),
    st.integers(2000, 30000).map(lambda n: "factors: " + "[" * n + "\n"),
)


@FUZZ
@given(text=hostile_yaml, where=st.sampled_from(["study", "spec", "set"]))
def test_fuzz_hostile_yaml_is_refused_in_one_line(run_cli, text: str, where: str) -> None:
    """Alias bombs, self-references, duplicate keys, integers beyond the float range and
    deep nesting: refused at load (one line), whatever file or flag carries them."""
    with workdir() as d:
        if where == "set":  # the same document in flow style, as a --set value
            (d / "s.yaml").write_text(yaml.safe_dump(GOOD_STUDY))
            flow = "{" + ", ".join(text.strip().splitlines()) + "}"
            check(run_cli, d, "study", "s.yaml", "--dry-run", "--set", f"description={flow}",
                  must_fail=True)
            return
        name = "s.yaml" if where == "study" else "m.yaml"
        (d / name).write_text(text)
        check(run_cli, d, *(("study", name, "--dry-run") if where == "study" else
                            ("info", name)), must_fail=True)


# ----------------------------------------------------------------------------- special files


def _make_node(d: Path, kind: str, name: str) -> None:
    p = d / name
    if kind == "fifo":
        os.mkfifo(p)
    elif kind == "null":
        os.mknod(p, 0o666 | stat.S_IFCHR, os.makedev(1, 3))
    elif kind == "zero-link":
        p.symlink_to("/dev/zero")
    elif kind == "loop":
        (d / "other").symlink_to(name)
        p.symlink_to("other")
    elif kind == "dir":
        p.mkdir()


@FUZZ
@given(kind=st.sampled_from(["fifo", "null", "zero-link", "loop", "dir"]),
       fmt=st.sampled_from(["yaml", "json"]))
def test_fuzz_special_files_as_output_are_never_replaced(run_cli, kind: str, fmt: str) -> None:
    with workdir() as d:
        _make_node(d, kind, f"out.{fmt}")
        before = os.lstat(d / f"out.{fmt}")
        check(run_cli, d, "scale", "ResNet-20-CIFAR", "--factor", "2", "--out", f"out.{fmt}")
        after = os.lstat(d / f"out.{fmt}")
        assert stat.S_IFMT(after.st_mode) == stat.S_IFMT(before.st_mode)
        assert after.st_ino == before.st_ino, "the node at the output path was replaced"


@FUZZ
@given(kind=st.sampled_from(["fifo", "zero-link", "loop", "dir"]),
       command=st.sampled_from(["info", "study", "fit", "results-model"]))
def test_fuzz_special_files_as_input_are_one_line(run_cli, kind: str, command: str) -> None:
    with workdir() as d:
        name = "in.csv" if command == "fit" else "in.yaml"
        _make_node(d, kind, name)
        if command == "results-model":
            (d / "r.csv").write_text(f"group,model,top1_err\nA,{name},0.5\n")
            check(run_cli, d, "fit", "r.csv", must_fail=True)
        elif command == "study":
            check(run_cli, d, "study", name, "--dry-run", must_fail=True)
        else:
            check(run_cli, d, command, name, must_fail=True)


# ----------------------------------------------------------------------------- results files

cell_text = st.text(alphabet=st.sampled_from(list("ab=+-@\t\r\x1b\x07[];,\"#\n ")), min_size=1,
                    max_size=8)


@FUZZ
@given(groups=st.lists(cell_text, min_size=2, max_size=4),
       flops=st.lists(st.one_of(st.integers(1, 10**12), st.just(10**400)), min_size=2,
                      max_size=4))
def test_fuzz_results_files_are_safe_to_print_and_export(run_cli, groups: list[str],
                                                         flops: list[int]) -> None:
    """Any group names and counts: refused in one line, or loaded with names that carry no
    control character and a CSV export a spreadsheet shows as text."""
    import csv
    import io

    from netscale.advise.results_io import load_source
    from netscale.errors import NetscaleError

    with workdir() as d:
        buf = io.StringIO()
        w = csv.writer(buf)
        w.writerow(["group", "flops", "top1_err"])
        for i, (g, f) in enumerate(zip(groups, flops)):
            w.writerow([g, f, 0.1 + 0.01 * i])
        (d / "r.csv").write_text(buf.getvalue())
        try:
            study = load_source(d / "r.csv")
        except NetscaleError as exc:
            assert "\n" not in str(exc)
            return
        for t in study.trials:
            assert not any(ord(c) < 32 or 0x7f <= ord(c) <= 0x9f for c in t.strategy)
        for row in list(csv.reader(io.StringIO(study.csv_text())))[1:]:
            assert not row[0].startswith(("=", "+", "-", "@", "\t", "\r"))


@FUZZ
@given(labels=st.lists(st.one_of(st.integers(-5, 2**70), st.floats(0, 20), st.booleans()),
                       min_size=1, max_size=4))
def test_fuzz_cifar_labels(labels: list[Any]) -> None:
    """CIFAR labels: integers in range are kept exactly; anything else is one line."""
    import pickle

    import numpy as np

    from netscale.data.formats import MAX_CLASSES, load_cifar_folder
    from netscale.errors import NetscaleError

    with workdir() as d:
        for name in ("data_batch_1", "test_batch"):
            with open(d / name, "wb") as f:
                pickle.dump({b"data": np.zeros((len(labels), 3072), np.uint8),
                             b"labels": labels}, f)
        ok = all(type(v) is int and 0 <= v < MAX_CLASSES for v in labels)
        try:
            splits, _ = load_cifar_folder(d)
        except NetscaleError as exc:
            assert not ok and "\n" not in str(exc)
            return
        assert ok and splits["train"][1].tolist() == labels


@settings(max_examples=4, deadline=None, derandomize=True)
@given(setting=st.sampled_from(["stdout /dev/full", "stdout closed", "cwd deleted",
                                "ulimit -f on --out", "ascii stdout"]),
       argv=st.sampled_from([["models"], ["scale", "ResNet-20-CIFAR", "--factor", "2"],
                             ["scale", "ResNet-20-CIFAR", "--factor", "2", "--out", "s.yaml"]]))
def test_hostile_environment_is_one_line(setting: str, argv: list[str]) -> None:
    """The real entry point in a hostile environment: success or exit 2 with one line; never
    a traceback, never a partial or temp file."""
    import resource

    with workdir() as d:
        cwd = d / "gone" if setting == "cwd deleted" else d
        if setting == "cwd deleted":
            cwd.mkdir()

        def pre() -> None:
            if setting == "ulimit -f on --out":
                resource.setrlimit(resource.RLIMIT_FSIZE, (64, 64))
            if setting == "cwd deleted":
                os.rmdir(cwd)
            if setting == "stdout closed":
                os.close(1)

        env = {**os.environ, "PYTHONPATH": str(SRC)}
        if setting == "ascii stdout":
            env["PYTHONIOENCODING"] = "ascii"
        with open("/dev/full" if setting == "stdout /dev/full" else os.devnull, "w") as out:
            r = subprocess.run([sys.executable, "-m", "netscale", *argv], cwd=cwd, env=env,
                               stdout=out, stderr=subprocess.PIPE, text=True, timeout=120,
                               preexec_fn=pre)
        assert "Traceback" not in r.stderr
        if setting == "ascii stdout" or (setting == "ulimit -f on --out" and
                                         "--out" not in argv):
            assert r.returncode == 0, r.stderr
        else:
            assert r.returncode == 2 and r.stderr.count("\n") == 1, r.stderr
        assert not [p for p in _files(d) if "netscale-" in p or (p == "s.yaml"
                    and r.returncode != 0)]
