"""Malformed inputs through the whole CLI: a table of categories × cases, each classified.

Every case is an input a user could type or point at that netscale must refuse: a bad flag
value, a malformed spec / pycls YAML / study config, a corrupt checkpoint, a broken IDX or
image folder, an output path that is a directory, a file or read-only. Each one must end with
exit code 2 and one line on stderr, no traceback, no hang, no crash, and no file left behind.

    PYTHONPATH=src python benchmarks/fuzz_inputs.py                # table on stdout
    PYTHONPATH=src python benchmarks/fuzz_inputs.py --update-docs  # also docs/reliability-inputs.md

Each case runs in a forked child of this process (netscale and torch are imported once, so
a case costs milliseconds, not an interpreter start), in its own empty directory, with a
timeout; a crash of the child (segfault, OOM kill) is caught as such. Read-only cases run as
a real subprocess (as root, with the DAC-override capabilities dropped by ``setpriv`` so that
permission bits apply).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import platform
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import time
import traceback
from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "reliability-inputs.md"
TIMEOUT = 90.0


@dataclass
class Case:
    category: str
    name: str
    argv: list[str]
    setup: Callable[[Path], None] | None = None
    read_only: bool = False  # run as a subprocess with permission bits enforced
    timeout: float = TIMEOUT
    keeps_files: bool = False  # a refusal that rightly leaves a record (a diverged run)
    ok_exit: bool = False  # exit 0 also passes (a write through a device or FIFO)
    verify: Callable[[Path], str | None] | None = None  # after the run: what went wrong
    environment: dict[str, object] | None = None  # run as a subprocess in a hostile setting
    progress: bool = False  # stderr also carries progress lines (bench's), ignored


@dataclass
class Outcome:
    case: Case
    code: int | None
    stderr: str
    seconds: float
    new_files: list[str] = field(default_factory=list)
    problem: str | None = None  # what the case's verify found (a replaced node, lost data)

    @property
    def kind(self) -> str:
        if self.code is None or self.code < 0:
            return "hang/crash"
        if "Traceback (most recent call last)" in self.stderr:
            return "traceback"
        if self.problem:
            return f"other ({self.problem})"
        if self.code == 0 and self.case.ok_exit:
            return "clear error"
        if self.code == 0:
            return "accepted (silently wrong)"
        lines = [ln for ln in self.stderr.splitlines() if ln.strip()
                 and not (self.case.progress and not ln.startswith("netscale"))]
        if self.code == 2 and len(lines) == 1:
            return "clear error"
        return f"other (exit {self.code}, {len(lines)} stderr lines)"


# ----------------------------------------------------------------------------- fixtures


def _write(path: Path, text: str | bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text)
    return path


def _src() -> Path:
    """The netscale source tree being fuzzed (the one imported: PYTHONPATH decides)."""
    import netscale

    return Path(netscale.__file__).resolve().parents[1]


def build_fixtures(fx: Path) -> None:
    """Shared read-only inputs: a trained run, corrupt checkpoints, a synthetic study."""
    env = {**os.environ, "PYTHONPATH": str(_src())}
    run = fx / "run"
    if not (run / "checkpoint.pt").exists():
        subprocess.run([sys.executable, "-m", "netscale", "train", "ResNet-20-CIFAR", "--data",
                        "digits", "--epochs", "1", "--subset", "64", "--val-subset", "32",
                        "--batch-size", "32", "--out", str(run), "-q"], check=True, env=env,
                       stdout=subprocess.DEVNULL)
    script = r"""
import json, os, sys, torch
from pathlib import Path
fx = Path(sys.argv[1]); good = torch.load(fx / "run" / "checkpoint.pt", weights_only=True)
def save(name, **changes):
    d = dict(good); d.update(changes)
    for k in [k for k, v in changes.items() if v is None]:
        d.pop(k)
    torch.save(d, fx / name)
save("ck_spec_not_json.pt", spec="{not json")
save("ck_spec_list.pt", spec="[1, 2]")
save("ck_version_str.pt", format_version="one")
save("ck_version_float.pt", format_version=1.5)
save("ck_version_new.pt", format_version=99)
save("ck_no_marker.pt", format=None)
save("ck_model_str.pt", model="weights")
save("ck_epoch_str.pt", epoch="3")
save("ck_history_dict.pt", history='{"a": 1}')
save("ck_history_items.pt", history='[1, 2]')
save("ck_recipe_bad.pt", recipe="[")
save("ck_data_list.pt", data="[]")
save("ck_spec_fields.pt", spec=json.dumps({"name": "x", "stages": "abc"}))
save("ck_spec_empty.pt", spec="{}")
save("ck_no_spec.pt", spec=None)
class Evil:
    def __reduce__(self):
        return (os.system, ("echo pwned",))
torch.save({"format": "netscale-checkpoint", "x": Evil()}, fx / "ck_evil.pt")
torch.save([1, 2, 3], fx / "ck_list.pt")
torch.save({"a": torch.zeros(2)}, fx / "ck_plain_dict.pt")
"""
    subprocess.run([sys.executable, "-c", script, str(fx)], check=True, env=env)
    raw = (run / "checkpoint.pt").read_bytes()
    _write(fx / "ck_truncated.pt", raw[: len(raw) // 2])
    _write(fx / "ck_empty.pt", b"")
    _write(fx / "ck_text.pt", "hello\n")
    _write(fx / "ck_zeros.pt", bytes(4096))
    from netscale_fixtures.synthetic import synthetic_study

    if not (fx / "study" / "results.sqlite").exists():
        synthetic_study(fx / "study")
    _write(fx / "not_a_study" / "results.sqlite", "this is not sqlite\n")
    (fx / "empty_dir").mkdir(exist_ok=True)
    ro = fx / "ro"
    ro.mkdir(exist_ok=True)
    shutil.copytree(fx / "study", ro / "study", dirs_exist_ok=True)
    shutil.copytree(run, ro / "run", dirs_exist_ok=True)
    _write(ro / "study.yaml", STUDY_OK.replace("OUT", str(ro / "newstudy")))
    for p in sorted(ro.rglob("*"), reverse=True):
        p.chmod(0o555 if p.is_dir() else 0o444)
    ro.chmod(0o555)


STUDY_OK = """\
name: fz
out: OUT
bases: [ResNet-20-CIFAR]
strategies: [d]
factors: [1]
train: false
bench: {enabled: false}
"""


# ----------------------------------------------------------------------------- setups


def files(**named: str | bytes) -> Callable[[Path], None]:
    def setup(d: Path) -> None:
        for name, text in named.items():
            _write(d / name.replace("__", "/"), text)
    return setup


def spec_yaml(**fields: object) -> str:
    base: dict[str, object] = {
        "name": "fz", "family": "cifar", "resolution": 32, "num_classes": 10,
        "in_channels": 3, "stem": {"type": "cifar", "width": 16},
        "stages": [{"block": "basic", "depth": 1, "width": 16, "stride": 1}],
    }
    base.update(fields)
    base = {k: v for k, v in base.items() if v != "<drop>"}
    return json.dumps(base)


def idx_bytes(dtype_code: int, dims: Sequence[int], payload: bytes) -> bytes:
    head = bytes([0, 0, dtype_code, len(dims)])
    for n in dims:
        head += int(n).to_bytes(4, "big")
    return head + payload


def idx_folder(images: bytes, labels: bytes, split: str = "train") -> Callable[[Path], None]:
    def setup(d: Path) -> None:
        _write(d / "data" / f"{split}-images-idx3-ubyte", images)
        _write(d / "data" / f"{split}-labels-idx1-ubyte", labels)
    return setup


def image_folder(layout: dict[str, list[tuple[str, bytes]]]) -> Callable[[Path], None]:
    def setup(d: Path) -> None:
        (d / "data").mkdir()
        for cls, items in layout.items():
            (d / "data" / cls).mkdir(parents=True, exist_ok=True)
            for name, data in items:
                _write(d / "data" / cls / name, data)
    return setup


def png_bytes() -> bytes:
    import numpy as np
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.zeros((8, 8, 3), dtype=np.uint8)).save(buf, format="PNG")
    return buf.getvalue()


def study_cfg(text: str) -> Callable[[Path], None]:
    return files(**{"s.yaml": text})


def study_text(**over: str) -> str:
    keys = {"name": "fz", "out": "st", "bases": "[ResNet-20-CIFAR]", "strategies": "[d]",
            "factors": "[1]", "train": "false", "bench": "{enabled: false}"}
    keys.update(over)
    return "".join(f"{k}: {v}\n" for k, v in keys.items() if v != "<drop>")


# ----------------------------------------------------------------------------- the table


def cases(fx: Path) -> list[Case]:
    out: list[Case] = []

    def add(cat: str, name: str, argv: Sequence[str], setup: Callable[[Path], None] | None = None,
            **kw: object) -> None:
        out.append(Case(cat, name, [str(a) for a in argv], setup, **kw))  # type: ignore[arg-type]

    m = "ResNet-20-CIFAR"
    # --- scale ------------------------------------------------------------------------------
    for v in ("abc", "0", "-1", "nan", "inf", "-inf", "1e999", "", " "):
        add("scale flags", f"--factor {v!r}", ["scale", m, "--factor", v])
    for v in ("", ",", "a,b", "1,,2", "nan", "2,inf", "0,2", "-2", "1e999"):
        add("scale flags", f"--factors {v!r}", ["scale", m, "--factors", v])
    for v in ("", " ", "xyz", "e_d=2", "e_d=a", "fast:2", "fast:x", "d1_w8_q3", "dd"):
        add("scale flags", f"--strategy {v!r}", ["scale", m, "--factor", "2", "--strategy", v])
    for v in ("", ",", "d,,w", "d,zz"):
        add("scale flags", f"--strategies {v!r}", ["scale", m, "--factor", "2", "--strategies", v])
    for v in ("-1", "2", "nan", "x"):
        add("scale flags", f"--alpha {v}", ["scale", m, "--factor", "2", "--alpha", v])
    for v in ("0", "1", "-1", "nan", "x"):
        add("scale flags", f"--tolerance {v}", ["scale", m, "--factor", "2", "--tolerance", v])
    for v in ("0", "-4", "x"):
        add("scale flags", f"--resolution-multiple {v}",
            ["scale", m, "--factor", "2", "--resolution-multiple", v])
    for v in ("", "abc", "0", "-4G", "0x", "nanx", "infx", "4Q"):
        add("scale flags", f"--target-flops {v!r}", ["scale", m, "--target-flops", v])
    add("scale flags", "--name ''", ["scale", m, "--factor", "2", "--name", ""])
    add("scale flags", "no amount", ["scale", m])
    add("scale flags", "unknown model", ["scale", "NoSuchNet-9", "--factor", "2"])
    add("output paths", "scale --out FILE with several results",
        ["scale", m, "--factors", "2,4", "--out", "f"], files(f="x"))
    add("output paths", "scale --out DIR/ (a file inside a file)",
        ["scale", m, "--factor", "2", "--out", "f/x.yaml"], files(f="x"))
    add("output paths", "scale --out ''", ["scale", m, "--factor", "2", "--out", ""])
    # --- info / models ----------------------------------------------------------------------
    add("info flags", "unknown model", ["info", "NoSuchNet"])
    add("info flags", "no model", ["info"])
    add("info flags", "--resolution 0", ["info", m, "--resolution", "0"])
    add("info flags", "--resolution x", ["info", m, "--resolution", "x"])
    add("info flags", "--method bogus", ["info", m, "--method", "bogus"])
    add("info flags", "--depth 0", ["info", m, "--depth", "0"])
    add("info flags", "--module missing", ["info", "--module", "nosuchpkg.mod:make",
                                            "--input-shape", "3,32,32"])
    add("info flags", "--module no factory", ["info", "--module", "os.path:nosuch",
                                               "--input-shape", "3,32,32"])
    add("info flags", "--module bad file", ["info", "--module", "m.py:f", "--input-shape",
                                             "3,8,8"], files(**{"m.py": "def f(:\n"}))
    raises = files(**{"m.py": "def f():\n raise ValueError('x')\n"})
    add("info flags", "--module raises", ["info", "--module", "m.py:f", "--input-shape",
                                           "3,8,8"], raises)
    three = files(**{"m.py": "def f():\n return 3\n"})
    add("info flags", "--module not a module", ["info", "--module", "m.py:f", "--input-shape",
                                                 "3,8,8"], three)
    for v in ("", "3,x,4", "0,8,8", "3,,4", "-3,8,8"):
        add("info flags", f"--input-shape {v!r}", ["info", "--module", "torch.nn:Identity",
                                                    "--input-shape", v])
    add("info flags", "models --family bogus", ["models", "--family", "bogus"])
    # --- spec files -------------------------------------------------------------------------
    bad_specs = {
        "not yaml": ": : :\n  - [",
        "not json": "{nope",
        "a list": "[1, 2, 3]",
        "a number": "42",
        "empty file": "",
        "depth abc": spec_yaml(stages=[{"block": "basic", "depth": "abc", "width": 16,
                                        "stride": 1}]),
        "depth 0": spec_yaml(stages=[{"block": "basic", "depth": 0, "width": 16, "stride": 1}]),
        "depth -1": spec_yaml(stages=[{"block": "basic", "depth": -1, "width": 16, "stride": 1}]),
        "depth 1e12": spec_yaml(stages=[{"block": "basic", "depth": 10**12, "width": 16,
                                         "stride": 1}]),
        "width 0": spec_yaml(stages=[{"block": "basic", "depth": 1, "width": 0, "stride": 1}]),
        "width float": spec_yaml(stages=[{"block": "basic", "depth": 1, "width": 16.5,
                                          "stride": 1}]),
        "width bool": spec_yaml(stages=[{"block": "basic", "depth": 1, "width": True,
                                         "stride": 1}]),
        "width 1e12": spec_yaml(stages=[{"block": "basic", "depth": 1, "width": 10**12,
                                         "stride": 1}]),
        "stride 0": spec_yaml(stages=[{"block": "basic", "depth": 1, "width": 16, "stride": 0}]),
        "block unknown": spec_yaml(stages=[{"block": "zzz", "depth": 1, "width": 16,
                                            "stride": 1}]),
        "stage unknown key": spec_yaml(stages=[{"block": "basic", "depth": 1, "width": 16,
                                                "stride": 1, "color": "red"}]),
        "stages empty": spec_yaml(stages=[]),
        "stages a string": spec_yaml(stages="abc"),
        "stages null": spec_yaml(stages=None),
        "stage a list": spec_yaml(stages=[[1, 2]]),
        "resolution 0": spec_yaml(resolution=0),
        "resolution str": spec_yaml(resolution="big"),
        "resolution 1e9": spec_yaml(resolution=10**9),
        "num_classes 0": spec_yaml(num_classes=0),
        "in_channels 0": spec_yaml(in_channels=0),
        "in_channels str": spec_yaml(in_channels="rgb"),
        "stem type unknown": spec_yaml(stem={"type": "zzz", "width": 16}),
        "stem a string": spec_yaml(stem="cifar"),
        "stem width -1": spec_yaml(stem={"type": "cifar", "width": -1}),
        "activation unknown": spec_yaml(activation="zzz"),
        "dropout 2": spec_yaml(dropout=2),
        "dropout nan": '{"name": "fz", "family": "cifar", "dropout": NaN, "stages": []}',
        "unknown top key": spec_yaml(colour="red"),
        "name a dict": spec_yaml(name={"a": 1}),
        "base unknown": "base: NoSuchNet\n",
        "base a number": "base: 3\n",
        "base cycle": "base: self.yaml\n",
        "base bad override": "base: ResNet-20-CIFAR\nstages: []\n",
        "base override type": "base: ResNet-20-CIFAR\nresolution: abc\n",
        "binary garbage": bytes(range(256)) * 4,
        "deep nesting": "[" * 5000 + "]" * 5000,
    }
    huge = {k: bad_specs.pop(k) for k in ("depth 1e12", "width 1e12", "resolution 1e9")}
    for name, text in huge.items():
        add("spec files", f"bench {name} (memory)", ["bench", "s.yaml", "--budget", "0.3"],
            files(**{"s.yaml": text}))
        add("spec files", f"train {name} (memory)", ["train", "s.yaml", "--data", "digits",
                                                     "--out", "o", "-q"],
            files(**{"s.yaml": text}))
    for name, text in bad_specs.items():
        fname = "self.yaml" if name == "base cycle" else (
            "s.json" if name in ("not json", "dropout nan") else "s.yaml")
        add("spec files", name, ["info", fname], files(**{fname: text}))
    add("spec files", "missing file", ["info", "nope.yaml"])
    add("spec files", "a directory", ["info", "d.yaml"], lambda d: (d / "d.yaml").mkdir())
    add("spec files", "scale a bad spec", ["scale", "s.yaml", "--factor", "2"],
        files(**{"s.yaml": bad_specs["depth 0"]}))
    add("spec files", "override syntax", ["info", "ResNet-20-CIFAR:resolution=abc"])
    add("spec files", "override unknown field", ["info", "ResNet-20-CIFAR:colour=red"])
    # --- pycls YAMLs ------------------------------------------------------------------------
    pycls = {
        "type unknown": "MODEL: {TYPE: zzz}\n",
        "MODEL a list": "MODEL: [1]\n",
        "anynet depths/widths mismatch": "MODEL: {TYPE: anynet}\nANYNET: {DEPTHS: [1, 2], "
                                         "WIDTHS: [8], STRIDES: [1, 2], BOT_MULS: [1, 1], "
                                         "GROUP_WS: [8, 8]}\n",
        "anynet depths str": "MODEL: {TYPE: anynet}\nANYNET: {DEPTHS: abc, WIDTHS: [8]}\n",
        "anynet empty": "MODEL: {TYPE: anynet}\nANYNET: {}\n",
        "anynet block unknown": "MODEL: {TYPE: anynet}\nANYNET: {BLOCK_TYPE: zzz, DEPTHS: [1], "
                                "WIDTHS: [8], STRIDES: [1], BOT_MULS: [1], GROUP_WS: [8]}\n",
        "anynet width 0": "MODEL: {TYPE: anynet}\nANYNET: {DEPTHS: [1], WIDTHS: [0], "
                          "STRIDES: [1], BOT_MULS: [1], GROUP_WS: [8]}\n",
        "anynet group 3 of width 8": "MODEL: {TYPE: anynet}\nANYNET: {BLOCK_TYPE: "
                                     "res_bottleneck_block, DEPTHS: [1], WIDTHS: [8], "
                                     "STRIDES: [1], BOT_MULS: [1], GROUP_WS: [3]}\n",
        "regnet WA negative": "MODEL: {TYPE: regnet}\nREGNET: {DEPTH: 10, W0: 24, WA: -1, "
                              "WM: 2.5, GROUP_W: 8}\n",
        "regnet WM 1": "MODEL: {TYPE: regnet}\nREGNET: {DEPTH: 10, W0: 24, WA: 24, WM: 1.0, "
                       "GROUP_W: 8}\n",
        "regnet DEPTH str": "MODEL: {TYPE: regnet}\nREGNET: {DEPTH: ten, W0: 24, WA: 24, "
                            "WM: 2.5, GROUP_W: 8}\n",
        "regnet DEPTH 0": "MODEL: {TYPE: regnet}\nREGNET: {DEPTH: 0, W0: 24, WA: 24, WM: 2.5, "
                          "GROUP_W: 8}\n",
        "regnet W0 0": "MODEL: {TYPE: regnet}\nREGNET: {DEPTH: 10, W0: 0, WA: 24, WM: 2.5, "
                       "GROUP_W: 8}\n",
        "regnet DEPTH 1e9": "MODEL: {TYPE: regnet}\nREGNET: {DEPTH: 1000000000, W0: 24, WA: 24, "
                            "WM: 2.5, GROUP_W: 8}\n",
        "regnet GROUP_W 0": "MODEL: {TYPE: regnet}\nREGNET: {DEPTH: 10, W0: 24, WA: 24, WM: 2.5, "
                            "GROUP_W: 0}\n",
        "effnet depths mismatch": "MODEL: {TYPE: effnet}\nEN: {DEPTHS: [1, 2], WIDTHS: [16], "
                                  "EXP_RATIOS: [1], KERNELS: [3], STRIDES: [1]}\n",
        "effnet kernel 0": "MODEL: {TYPE: effnet}\nEN: {STEM_W: 32, DEPTHS: [1], WIDTHS: [16], "
                           "EXP_RATIOS: [1], KERNELS: [0], STRIDES: [1], HEAD_W: 64}\n",
        "effnet EN a list": "MODEL: {TYPE: effnet}\nEN: [1]\n",
        "TRAIN.IM_SIZE str": "MODEL: {TYPE: regnet}\nREGNET: {DEPTH: 10, W0: 24, WA: 24, "
                             "WM: 2.5, GROUP_W: 8}\nTRAIN: {IM_SIZE: big}\n",
        "NUM_CLASSES 0": "MODEL: {TYPE: regnet, NUM_CLASSES: 0}\nREGNET: {DEPTH: 10, W0: 24, "
                         "WA: 24, WM: 2.5, GROUP_W: 8}\n",
    }
    for name, text in pycls.items():
        add("pycls YAMLs", name, ["info", "p.yaml"], files(**{"p.yaml": text}))
    # --- study configs ----------------------------------------------------------------------
    configs = {
        "tolerance abc": study_text(tolerance="abc"),
        "tolerance 2": study_text(tolerance="2"),
        "tolerance true": study_text(tolerance="true"),
        "resources cpus abc": study_text(resources="{cpus: abc}"),
        "resources gpus -1": study_text(resources="{gpus: -1}"),
        "resources a list": study_text(resources="[1]"),
        "resources unknown": study_text(resources="{tpus: 1}"),
        "train 'false' (string)": study_text(train='"false"'),
        "train 1": study_text(train="1"),
        "factors abc": study_text(factors="[abc]"),
        "factors 0": study_text(factors="[0]"),
        "factors nan": study_text(factors="[.nan]"),
        "factors inf": study_text(factors="[.inf]"),
        "factors true": study_text(factors="[true]"),
        "factors empty": study_text(factors="[]"),
        "factors a dict": study_text(factors="{a: 1}"),
        "strategies empty": study_text(strategies="[]"),
        "strategies bogus": study_text(strategies="[zz]"),
        "strategies a number": study_text(strategies="[3]"),
        "strategies empty string": study_text(strategies='[""]'),
        "bases unknown": study_text(bases="[NoSuchNet]"),
        "bases a dict": study_text(bases="[{a: 1}]"),
        "bases missing": study_text(bases="<drop>"),
        "bases bad file": study_text(bases="[nofile.yaml]"),
        "rounding bogus": study_text(rounding="zz"),
        "rounding a list": study_text(rounding="[exact]"),
        "seeds abc": study_text(seeds="[abc]"),
        "seeds -1": study_text(seeds="[-1]"),
        "seeds 1.5": study_text(seeds="[1.5]"),
        "retries -1": study_text(retries="-1"),
        "retries abc": study_text(retries="abc"),
        "retries true": study_text(retries="true"),
        "resolution_multiple 0": study_text(resolution_multiple="0"),
        "resolution_multiple 2.5": study_text(resolution_multiple="2.5"),
        "name a list": study_text(name="[a]"),
        "out a number": study_text(out="3"),
        "description a dict": study_text(description="{a: 1}"),
        "unknown key": study_text(colour="red"),
        "bench.enabled 'no'": study_text(bench='{enabled: "no"}'),
        "bench.mode bogus": study_text(bench="{mode: zz}"),
        "bench.batch_size 0": study_text(bench="{batch_size: 0}"),
        "bench.batch_size abc": study_text(bench="{batch_size: abc}"),
        "bench.budget -1": study_text(bench="{budget: -1}"),
        "bench.budget abc": study_text(bench="{budget: abc}"),
        "bench.threads 100000": study_text(bench="{threads: 100000}"),
        "bench unknown key": study_text(bench="{color: 1}"),
        "bench a list": study_text(bench="[1]"),
        "recipe epochs abc": study_text(train="true", data="{name: digits}",
                                        recipe="{epochs: abc}"),
        "recipe lr -1": study_text(train="true", data="{name: digits}", recipe="{lr: -1}"),
        "recipe unknown": study_text(train="true", data="{name: digits}",
                                     recipe="{colour: 1}"),
        "recipe a list": study_text(train="true", data="{name: digits}", recipe="[1]"),
        "data missing": study_text(train="true"),
        "data name unknown": study_text(train="true", data="{name: nosuchset}"),
        "data path missing": study_text(train="true", data="{path: nowhere}"),
        "data subset abc": study_text(train="true", data="{name: digits, subset: abc}"),
        "data a string": study_text(train="true", data="digits"),
        "base_overrides unknown": study_text(base_overrides="{stages: []}"),
        "base_overrides resolution abc": study_text(base_overrides="{resolution: abc}"),
        "not a mapping": "[1, 2]\n",
        "empty file": "",
        "bad yaml": "bases: [\n",
    }
    for name, text in configs.items():
        # a dry run plans without data that is not on this machine (it may be on the one
        # that runs the study): it says "data missing" and exits 0
        add("study configs", name, ["study", "s.yaml", "--dry-run"], study_cfg(text),
            ok_exit=name == "data path missing")
    add("study configs", "factor 1e9 (memory)", ["study", "s.yaml"],
        study_cfg(study_text(factors="[1000000000]", bench="{enabled: true, budget: 0.2}")))
    add("study configs", "factor 1e9 training (memory)", ["study", "s.yaml"],
        study_cfg(study_text(factors="[1000000000]", train="true",
                             data="{name: digits, subset: 64}", recipe="{epochs: 1}")))
    add("study configs", "bench batch 1e9 (memory)", ["study", "s.yaml"],
        study_cfg(study_text(bench="{enabled: true, batch_size: 1000000000}")))
    add("study configs", "missing config", ["study", "nope.yaml", "--dry-run"])
    add("study configs", "a directory without study.yaml", ["study", "d", "--dry-run"],
        lambda d: (d / "d").mkdir())
    # --- study / report / quickstart flags --------------------------------------------------
    ok = study_cfg(study_text())
    add("study flags", "--workers 100000", ["study", "s.yaml", "--workers", "100000"], ok)
    add("study flags", "--workers 0", ["study", "s.yaml", "--workers", "0"], ok)
    add("study flags", "--device cuda", ["study", "s.yaml", "--device", "cuda"], ok)
    add("study flags", "--device bogus", ["study", "s.yaml", "--device", "bogus"], ok)
    add("study flags", "--executor bogus", ["study", "s.yaml", "--executor", "bogus"], ok)
    add("study flags", "--output without --export", ["study", "s.yaml", "-o", "x.csv"], ok)
    add("study flags", "--export bogus", ["study", fx / "study", "--export", "xml"])
    add("study flags", "--export of an empty dir", ["study", fx / "empty_dir", "--export", "csv"])
    add("study flags", "--export of a non-sqlite store", ["study", fx / "not_a_study",
                                                          "--export", "csv"])
    add("output paths", "study --export csv -o DIR", ["study", fx / "study", "--export", "csv",
                                                      "-o", "d"], lambda d: (d / "d").mkdir())
    add("output paths", "study --export csv -o FILE/x", ["study", fx / "study", "--export",
                                                         "csv", "-o", "f/x.csv"], files(f="x"))
    add("output paths", "study out is a file", ["study", "s.yaml"],
        files(**{"s.yaml": study_text(out="f"), "f": "x"}))
    add("report flags", "missing study dir", ["report", "nope"])
    add("report flags", "an empty dir", ["report", fx / "empty_dir", "--out", "r"])
    add("report flags", "a non-sqlite store", ["report", fx / "not_a_study", "--out", "r"])
    add("output paths", "report --out FILE", ["report", fx / "study", "--out", "f"], files(f="x"))
    add("quickstart flags", "--epochs 0", ["quickstart", "--epochs", "0", "--out", "q"])
    add("quickstart flags", "--bench-budget 0", ["quickstart", "--bench-budget", "0"])
    add("quickstart flags", "--bench-budget 1e9", ["quickstart", "--bench-budget", "1e9"])
    add("quickstart flags", "--workers 100000", ["quickstart", "--workers", "100000", "--out",
                                                 "q"])
    add("quickstart flags", "--data bogus", ["quickstart", "--data", "nosuchset", "--out", "q"])
    add("output paths", "quickstart --out FILE", ["quickstart", "--out", "f"], files(f="x"))
    # --- train ------------------------------------------------------------------------------
    tr = ["train", m, "--data", "digits", "--subset", "64", "--epochs", "1", "-q"]
    add("train flags", "--threads 100000", [*tr, "--threads", "100000"])
    add("train flags", "--threads 0", [*tr, "--threads", "0"])
    add("train flags", "--device cuda", [*tr, "--device", "cuda", "--out", "o"])
    add("train flags", "--device cuda:7", [*tr, "--device", "cuda:7", "--out", "o"])
    add("train flags", "--device bogus", [*tr, "--device", "bogus", "--out", "o"])
    for flag, v in (("--epochs", "0"), ("--epochs", "x"), ("--batch-size", "0"),
                    ("--lr", "0"), ("--lr", "nan"), ("--lr", "-1"), ("--weight-decay", "-1"),
                    ("--momentum", "1.5"), ("--label-smoothing", "1"), ("--ema-decay", "2"),
                    ("--warmup-epochs", "inf"), ("--val-fraction", "1.5"),
                    ("--val-fraction", "1"), ("--subset", "0"), ("--resolution", "0"),
                    ("--channels", "2"), ("--workers", "-1"), ("--max-epochs", "0"),
                    ("--optimizer", "adam"), ("--augment", "zz"), ("--seed", "x"),
                    ("--batch-size", "99999999999999999999")):
        add("train flags", f"{flag} {v}", [*tr, flag, v, "--out", "o"])
    add("train flags", "--subset 1 (BN needs 2)", ["train", m, "--data", "digits", "--subset",
                                                  "1", "--epochs", "1", "-q", "--out", "o"])
    add("train flags", "--lr 1e6 diverges (NaN)", ["train", m, "--data", "digits", "--epochs",
                                                   "2", "--lr", "1e6", "--subset", "128",
                                                   "--warmup-epochs", "0", "--out", "t", "-q"],
        timeout=180, keeps_files=True)
    add("train flags", "--batch-size 1e6 (memory)", ["train", m, "--data", "digits",
                                                     "--batch-size", "1000000", "--epochs",
                                                     "1", "-q", "--out", "o", "--no-lr-scaling"])
    add("train flags", "--resolution 100000 (memory)", [*tr, "--resolution", "100000",
                                                        "--out", "o"])
    add("train flags", "--data unknown", ["train", m, "--data", "nosuchset", "--out", "o"])
    add("train flags", "--data ''", ["train", m, "--data", "", "--out", "o"])
    add("train flags", "--resume without a run", [*tr, "--resume", "--out", "empty"],
        lambda d: (d / "empty").mkdir())
    add("train flags", "--resume a finished run (reprints its result)",
        [*tr, "--resume", "--out", fx / "run"], ok_exit=True)
    add("train flags", "existing run without --resume", [*tr, "--out", "r"],
        lambda d: shutil.copytree(fx / "run", d / "r"))
    add("train flags", "a spec with width 0", ["train", "s.yaml", "--data", "digits"],
        files(**{"s.yaml": spec_yaml(stages=[{"block": "basic", "depth": 1, "width": 0,
                                              "stride": 1}])}))
    add("output paths", "train --out FILE", [*tr, "--out", "f"], files(f="x"))
    add("output paths", "train --out FILE/sub", [*tr, "--out", "f/sub"], files(f="x"))
    # --- data folders -----------------------------------------------------------------------
    px = bytes(28 * 28 * 4)
    good_images = idx_bytes(0x08, [4, 28, 28], px)
    good_labels = idx_bytes(0x08, [4], bytes([0, 1, 2, 3]))
    idx_cases = {
        "images bad magic": idx_folder(b"\x12\x34" + good_images[2:], good_labels),
        "images truncated header": idx_folder(good_images[:6], good_labels),
        "images truncated data": idx_folder(good_images[:100], good_labels),
        "images empty file": idx_folder(b"", good_labels),
        "images float dtype": idx_folder(idx_bytes(0x0D, [4, 28, 28], bytes(4 * 28 * 28 * 4)),
                                         good_labels),
        "images 1-D": idx_folder(idx_bytes(0x08, [16], bytes(16)), good_labels),
        "images huge dims": idx_folder(idx_bytes(0x08, [2**31 - 1, 2**31 - 1, 2**31 - 1], px),
                                       good_labels),
        "images 0 dims": idx_folder(idx_bytes(0x08, [], b""), good_labels),
        "labels count mismatch": idx_folder(good_images, idx_bytes(0x08, [3], bytes(3))),
        "labels bad magic": idx_folder(good_images, b"\xff" * 12),
        "labels 2-D": idx_folder(good_images, idx_bytes(0x08, [4, 2], bytes(8))),
        "labels too large count": idx_folder(good_images, idx_bytes(0x08, [10**9], bytes(4))),
        "only labels": lambda d: _write(d / "data" / "train-labels-idx1-ubyte", good_labels),
        "only images": lambda d: _write(d / "data" / "train-images-idx3-ubyte", good_images),
        "gzip garbage": lambda d: (_write(d / "data" / "train-images-idx3-ubyte.gz", b"xx"),
                                   _write(d / "data" / "train-labels-idx1-ubyte.gz", b"yy")),
        "zero images": idx_folder(idx_bytes(0x08, [0, 28, 28], b""), idx_bytes(0x08, [0], b"")),
    }
    for name, setup in idx_cases.items():
        add("IDX folders", name, ["train", m, "--data", "data", "--epochs", "1", "-q", "--out",
                                  "o"], setup)
    png = png_bytes()
    img_cases = {
        "empty folder": image_folder({}),
        "class dirs without images": image_folder({"a": [], "b": []}),
        "one class": image_folder({"a": [("1.png", png), ("2.png", png)]}),
        "corrupt png": image_folder({"a": [("1.png", b"notapng")] * 1,
                                     "b": [("2.png", b"\x89PNG\r\n\x1a\nxx")]}),
        "zero-byte images": image_folder({"a": [("1.png", b"")], "b": [("2.png", b"")]}),
        "text files only": image_folder({"a": [("1.txt", b"x")], "b": [("2.txt", b"y")]}),
        "images at the top level": lambda d: (_write(d / "data" / "1.png", png),
                                              _write(d / "data" / "2.png", png)),
        "a file, not a folder": files(data="x"),
        "CIFAR batch not a pickle": files(**{"data__data_batch_1": b"x",
                                             "data__test_batch": b"y",
                                             "data__batches.meta": b"z"}),
    }
    for name, setup in img_cases.items():
        add("image folders", name, ["train", m, "--data", "data", "--epochs", "1", "-q",
                                    "--out", "o", "--val-fraction", "0.5"], setup)
    # --- eval / checkpoints -----------------------------------------------------------------
    for ck in sorted(p.name for p in fx.glob("ck_*.pt")):
        add("checkpoints", ck, ["eval", fx / ck])
    add("checkpoints", "a missing file", ["eval", "nope.pt"])
    add("checkpoints", "a dir without checkpoint", ["eval", fx / "empty_dir"])
    add("checkpoints", "train --resume on a corrupt checkpoint",
        [*tr, "--resume", "--out", "r"],
        lambda d: (d / "r").mkdir() or shutil.copy(fx / "ck_spec_not_json.pt",
                                                   d / "r" / "checkpoint.pt"))
    ev = ["eval", fx / "run"]
    add("eval flags", "--val-subset with --split train", [*ev, "--split", "train",
                                                          "--val-subset", "10"])
    add("eval flags", "--device cuda", [*ev, "--device", "cuda"])
    add("eval flags", "--threads 100000", [*ev, "--threads", "100000"])
    add("eval flags", "--batch-size 0", [*ev, "--batch-size", "0"])
    add("eval flags", "--model a different spec", [*ev, "--model", "ResNet-56-CIFAR"])
    add("eval flags", "--data unknown", [*ev, "--data", "nosuchset"])
    add("eval flags", "--resolution 0", [*ev, "--resolution", "0"])
    add("eval flags", "--weights ema (none stored)", [*ev, "--weights", "ema"])
    # --- bench ------------------------------------------------------------------------------
    b = ["bench", m, "--budget", "0.3"]
    add("bench flags", "--threads 100000", [*b, "--threads", "100000"])
    add("bench flags", "--batch-size 1e6 --retry-oom --budget 0.5",
        ["bench", m, "--batch-size", "1000000", "--retry-oom", "--budget", "0.5", "--out",
         "o.json"], timeout=120)
    add("bench flags", "--batch-size 1e9", [*b, "--batch-size", "1000000000"])
    add("bench flags", "--resolution 1e5", [*b, "--resolution", "100000"])
    for flag, v in (("--budget", "0"), ("--budget", "nan"), ("--budget", "1e9"),
                    ("--warmup", "-1"), ("--warmup", "1000000000"), ("--retries", "-1"),
                    ("--retries", "100000"), ("--noise-threshold", "0"),
                    ("--noise-threshold", "50"), ("--resolution", "4"), ("--batch-size", "0"),
                    ("--mode", "zz"), ("--device", "cuda"), ("--device", "bogus"),
                    ("--seed", "x")):
        add("bench flags", f"{flag} {v}", [*b, flag, v])
    add("bench flags", "no model", ["bench"])
    add("bench flags", "--fit with one model", [*b, "--fit"])
    add("bench flags", "--plot without --fit", [*b, "--plot", "p.png"])
    add("bench flags", "--strategies without --base", [*b, "--strategies", "d"])
    add("bench flags", "--base with --strategies ''", ["bench", "--base", m, "--strategies",
                                                       "", "--fit"])
    add("bench flags", "--base with --factors ''", ["bench", "--base", m, "--factors", "",
                                                    "--fit"])
    add("bench flags", "--base with --factors nan", ["bench", "--base", m, "--factors", "nan",
                                                     "--fit"])
    add("output paths", "bench --out DIR", [*b, "--out", "d"], lambda d: (d / "d").mkdir())
    add("output paths", "bench --out DIR.json", [*b, "--out", "d.json"],
        lambda d: (d / "d.json").mkdir())
    add("output paths", "bench --out x.txt", [*b, "--out", "x.txt"])
    add("output paths", "bench --out FILE/x.json", [*b, "--out", "f/x.json"], files(f="x"))
    # --- fit / recommend --------------------------------------------------------------------
    st = fx / "study"
    for flag, v in (("--n-boot", "100000000"), ("--n-boot", "-1"), ("--level", "0"),
                    ("--level", "1.5"), ("--level", "nan"), ("--x", "zz"), ("--law", "zz"),
                    ("--base", "NoSuchNet"), ("--seed", "x")):
        add("fit flags", f"{flag} {v}", ["fit", st, flag, v])
    add("fit flags", "--samples without --json", ["fit", st, "--samples"])
    add("fit flags", "missing dir", ["fit", "nope"])
    add("fit flags", "empty dir", ["fit", fx / "empty_dir"])
    add("fit flags", "non-sqlite store", ["fit", fx / "not_a_study"])
    rc = ["recommend", st, "--no-measure"]
    for v in ("", "abc", "0", "-1x", "0x", "nanx", "0.001x", "1e-9x", "1e-300x"):
        add("recommend flags", f"--target-flops {v!r}", [*rc, "--target-flops", v])
    for flag, v in (("--max-latency", "-1"), ("--max-latency", "nan"), ("--max-params", "abc"),
                    ("--max-params", "-5M"), ("--max-acts", "0"), ("--budget", "0"),
                    ("--alphas", "a"), ("--alphas", "nan"), ("--strategies", ""),
                    ("--strategies", "zz"), ("--base", "NoSuchNet"), ("--device", "cuda"),
                    ("--batch-size", "0"), ("--x", "zz"), ("--law", "zz")):
        add("recommend flags", f"{flag} {v!r}", [*rc, "--target-flops", "2x", flag, v])
    add("recommend flags", "unknown base", ["recommend", "NoSuchNet", "--target-flops", "2x"])
    add("recommend flags", "missing --target-flops", ["recommend", st])
    add("output paths", "recommend --out DIR", [*rc, "--target-flops", "2x", "--out", "d"],
        lambda d: (d / "d").mkdir())
    add("output paths", "recommend --out FILE/x.yaml", [*rc, "--target-flops", "2x", "--out",
                                                        "f/x.yaml"], files(f="x"))
    # --- read-only places -------------------------------------------------------------------
    ro = fx / "ro"
    add("read-only places", "study in a read-only dir", ["study", ro / "study.yaml"],
        read_only=True)
    add("read-only places", "report of a read-only study", ["report", ro / "study"],
        read_only=True)
    add("read-only places", "quickstart --out read-only", ["quickstart", "--out", ro / "q"],
        read_only=True)
    add("read-only places", "train --out read-only", [*tr, "--out", ro / "t"], read_only=True)
    add("read-only places", "train --resume read-only", [*tr, "--resume", "--out", ro / "run"],
        read_only=True)
    add("read-only places", "scale --out read-only", ["scale", m, "--factor", "2", "--out",
                                                      ro / "s.yaml"], read_only=True)
    add("read-only places", "scale --factors --out read-only",
        ["scale", m, "--factors", "2,4", "--out", ro / "specs"], read_only=True)
    add("read-only places", "bench --out read-only", [*b, "--out", ro / "b.json"],
        read_only=True)
    add("read-only places", "recommend --out read-only",
        [*rc, "--target-flops", "2x", "--out", ro / "r.yaml"], read_only=True)
    add("read-only places", "study --export -o read-only",
        ["study", ro / "study", "--export", "csv", "-o", ro / "x.csv"], read_only=True)
    # --- generic argument errors ------------------------------------------------------------
    for argv in (["bogus"], ["scale", "--bogus"], ["train"], ["eval"], ["fit"], ["recommend"],
                 ["study"], ["report"], ["bench", "--batch-size"], ["info", "-r"]):
        add("usage errors", " ".join(argv), argv)
    return out


# ----------------------------------------------------------------------------- input/output roots


def _node(name: str, kind: str) -> Callable[[Path], None]:
    """Setup: a character device (/dev/null's numbers), a FIFO, a link loop or a link to a
    regular file at ``name``."""
    def make(d: Path) -> None:
        p = d / name
        if kind == "chardev":
            os.mknod(p, 0o666 | stat.S_IFCHR, os.makedev(1, 3))
        elif kind == "fifo":
            os.mkfifo(p)
        elif kind == "loop":
            (d / "other").symlink_to(name)
            p.symlink_to("other")
        elif kind == "zero":
            p.symlink_to("/dev/zero")
        elif kind == "link":
            (d / "real").write_text("old")
            p.symlink_to("real")
    return make


def _kept(name: str, kind: str) -> Callable[[Path], str | None]:
    """Verify: the node at ``name`` is still of its kind (never replaced by a file)."""
    def check(d: Path) -> str | None:
        p = d / name
        mode = os.lstat(p).st_mode
        ok = {"chardev": stat.S_ISCHR, "fifo": stat.S_ISFIFO, "loop": stat.S_ISLNK,
              "link": stat.S_ISLNK}[kind](mode)
        if kind == "link" and ok and (d / "real").read_bytes() == b"old":
            return "the link's target was not written"
        return None if ok else f"{kind} at the output path replaced"
    return check


def _alias_bomb(depth: int = 9, width: int = 9) -> str:
    lines = ["l0: &l0 [x]"] + [f"l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * width)}]"
                               for i in range(1, depth + 1)]
    return "\n".join(lines) + "\n"


def _cifar(labels: object, data: object = None) -> Callable[[Path], None]:
    def make(d: Path) -> None:
        import pickle

        import numpy as np

        (d / "c").mkdir()
        x = np.zeros((2, 3072), np.uint8) if data is None else data
        for name in ("data_batch_1", "test_batch"):
            with open(d / "c" / name, "wb") as f:
                pickle.dump({b"data": x, b"labels": labels}, f)
    return make


def _big_results(n: int) -> Callable[[Path], None]:
    def make(d: Path) -> None:
        rows = [f"g{i % 5},{10**6 + 997 * i},{0.1 + 30 * (10**6 + 997 * i) ** -0.3:.6f}"
                for i in range(n)]
        (d / "r.csv").write_text("group,flops,top1_err\n" + "\n".join(rows) + "\n")
    return make


def io_cases(fx: Path) -> list[Case]:
    """Output nodes, write failures, hostile environments and hostile inputs."""
    out: list[Case] = []

    def add(cat: str, name: str, argv: Sequence[str], setup: Callable[[Path], None] | None = None,
            **kw: object) -> None:
        out.append(Case(cat, name, [str(a) for a in argv], setup, **kw))  # type: ignore[arg-type]

    m = "ResNet-20-CIFAR"
    st = fx / "study"
    b = ["bench", m, "--budget", "0.3"]
    rc = ["recommend", st, "--no-measure", "--target-flops", "2x"]
    writers = {
        "scale --out": (["scale", m, "--factor", "2", "--out"], "s.yaml"),
        "export -o": (["export", m, "-f", "torchscript", "-o"], "m.pt"),
        "study --export -o": (["study", st, "--export", "csv", "-o"], "t.csv"),
        "recommend --out": ([*rc, "--out"], "r.yaml"),
        "bench --out": ([*b, "--out"], "b.json"),
        "bench --fit --plot": (["bench", m, "ResNet-32-CIFAR", "ResNet-44-CIFAR", "--budget",
                                "0.3", "--fit", "--plot"], "p.png"),
    }
    for label, (argv, name) in writers.items():
        slow = {"progress": True, "timeout": 180} if label.startswith("bench") else {}
        for kind in ("chardev", "link"):
            add("output nodes", f"{label} {kind}", [*argv, name], _node(name, kind),
                ok_exit=True, verify=_kept(name, kind), keeps_files=True, **slow)
        for kind in ("fifo", "loop"):
            add("output nodes", f"{label} {kind}", [*argv, name], _node(name, kind),
                verify=_kept(name, kind), **slow)
        add("write failures", f"{label} past ulimit -f", [*argv, name],
            environment={"fsize": 200}, **slow)
    add("output nodes", "study --export -o /dev/stdout",
        ["study", st, "--export", "csv", "-o", "/dev/stdout"], ok_exit=True, keeps_files=True,
        verify=lambda d: None if os.path.islink("/dev/stdout") else "/dev/stdout replaced")
    # --- the process's environment ------------------------------------------------------------
    for argv in (["models"], ["info", m], ["fit", st, "--n-boot", "20"],
                 ["scale", m, "--factor", "2"]):
        add("environment", f"{argv[0]} > /dev/full", argv, environment={"stdout": "full"})
        add("environment", f"{argv[0]} with stdout closed", argv,
            environment={"stdout": "closed"})
    add("environment", "scale with PYTHONIOENCODING=ascii (× in output)",
        ["scale", m, "--factor", "2"], environment={"env": {"PYTHONIOENCODING": "ascii"}},
        ok_exit=True)
    add("environment", "models in a deleted directory", ["models"],
        environment={"rm_cwd": True})
    add("environment", "models > file past ulimit -f", ["models"],
        environment={"stdout": "file", "fsize": 100})
    add("environment", "info of a non-UTF-8 path", ["info", os.fsdecode(b"s\xff.yaml")])
    add("environment", "study out: a symlink loop", ["study", "s.yaml"],
        lambda d: (_node("loop1", "loop")(d), study_cfg(study_text(out="loop1"))(d)))
    add("environment", "--set with 20,000 nested brackets",
        ["study", "s.yaml", "--dry-run", "--set", "factors=" + "[" * 20000],
        study_cfg(study_text()))
    add("environment", "--kwarg with 20,000 nested brackets",
        ["scale", "--module", "net.py:make", "--input-shape", "3,32,32", "--factor", "2",
         "--kwarg", "width=" + "[" * 20000],
        files(**{"net.py": "import torch\ndef make(width=8):\n    return torch.nn.Conv2d(3, "
                           "width, 3)\n"}))
    # --- hostile YAML / numbers ---------------------------------------------------------------
    bomb = _alias_bomb()
    add("hostile YAML", "alias bomb in a study config", ["study", "s.yaml", "--dry-run"],
        files(**{"s.yaml": study_text() + "description: " + "x\n" + bomb}))
    add("hostile YAML", "alias bomb in a spec file", ["info", "m.yaml"], files(**{"m.yaml": bomb}))
    add("hostile YAML", "alias bomb in --set",
        ["study", "s.yaml", "--dry-run", "--set",
         "description={" + ", ".join(bomb.strip().splitlines()) + "}"], study_cfg(study_text()))
    add("hostile YAML", "recursive alias", ["info", "m.yaml"], files(**{"m.yaml": "a: &a [*a]\n"}))
    add("hostile YAML", "duplicate key in a study config", ["study", "s.yaml", "--dry-run"],
        files(**{"s.yaml": study_text() + "factors: [4]\n"}))
    big = "1" + "0" * 400
    add("hostile YAML", "tolerance 1e400 as an integer", ["study", "s.yaml", "--dry-run"],
        study_cfg(study_text(tolerance=big)))
    add("hostile YAML", "factors [1e400 as an integer]", ["study", "s.yaml", "--dry-run"],
        study_cfg(study_text(factors=f"[{big}]")))
    add("hostile YAML", "spec width 1e400 as an integer", ["info", "m.yaml"],
        files(**{"m.yaml": spec_yaml(name="fz").replace('"width": 16', f'"width": {big}', 1)}))
    add("hostile YAML", "results JSON flops 1e400 as an integer", ["fit", "r.json"],
        files(**{"r.json": f'[{{"group": "a", "flops": {big}, "top1_err": 0.5}}]'}))
    add("hostile YAML", "--seed 2**64", ["fit", st, "--seed", str(2**64)])
    add("hostile YAML", "results JSON nested 100,000 deep", ["fit", "r.json"],
        files(**{"r.json": "[" * 100_000 + "]" * 100_000}))
    # --- special files and memory bombs as inputs ---------------------------------------------
    for kind in ("zero", "fifo"):
        add("special inputs", f"spec file is {kind}", ["info", "x.yaml"], _node("x.yaml", kind))
        add("special inputs", f"study config is {kind}", ["study", "x.yaml", "--dry-run"],
            _node("x.yaml", kind))
        add("special inputs", f"base: is {kind}", ["info", "d.yaml"],
            lambda d, kind=kind: (_node("x.yaml", kind)(d),
                                  (d / "d.yaml").write_text("base: x.yaml\n")))
        add("special inputs", f"results file is {kind}", ["fit", "x.csv"], _node("x.csv", kind))
        add("special inputs", f"results model is {kind}", ["fit", "r.csv"],
            lambda d, kind=kind: (_node("x.yaml", kind)(d), (d / "r.csv").write_text(
                "group,model,top1_err\nA,x.yaml,0.5\n")))
    tr = ["train", m, "--data", "c", "--epochs", "1", "--out", "o", "-q"]
    add("special inputs", "CIFAR labels 0.5", tr, _cifar([0, 0.5]))
    add("special inputs", "CIFAR label 2**40", tr, _cifar([0, 2**40]))
    add("special inputs", "CIFAR data of 2**60 zero-size items", tr,
        _cifar([0, 1], __import__("numpy").zeros((2**30, 2**30), "V0")))
    # --- memory guards ------------------------------------------------------------------------
    for flag, v in (("--resolution", "100000"), ("--batch-size", "100000000")):
        # eval's batch holds at most the split's images (32 here): a huge --batch-size fits
        add("memory guards", f"eval {flag} {v}", ["eval", fx / "run", flag, v],
            ok_exit=flag == "--batch-size")
        add("memory guards", f"export {flag} {v}", ["export", m, "-f", "pt2", "-o", "m.pt2", flag,
                                                     v])
    add("memory guards", "export --factor 1e12", ["export", m, "-f", "pt2", "-o", "m.pt2",
                                                   "--factor", "1e12"])
    # --- results files at scale and silently wrong cases --------------------------------------
    add("results files", "100,000 rows (fit --n-boot 0)", ["fit", "r.csv", "--n-boot", "0"],
        _big_results(100_000), ok_exit=True, timeout=600)
    add("results files", "quoted multi-line field with a # line",
        ["fit", "r.csv", "--n-boot", "0"], files(**{"r.csv": (
            'group,flops,top1_err,device\nA,1e8,0.5,"x\n# y"\nA,2e8,0.4,a\nA,4e8,0.3,b\n'
            "B,1e8,0.6,c\nB,2e8,0.5,d\nB,4e8,0.45,e\n")}), ok_exit=True,
        verify=None)
    add("results files", "duplicated CSV header", ["fit", "r.csv"],
        files(**{"r.csv": "group,flops,top1_err,flops\nA,1,0.5,2\n"}))
    add("silently wrong", "study name ../../x", ["study", "s.yaml", "--dry-run"],
        study_cfg(study_text(name="../../x", out="<drop>")))
    add("silently wrong", "bench --fit --from F --predict X",
        ["bench", "--fit", "--from", "r.csv", "--predict", m], _big_results(30))
    add("silently wrong", "fit STUDY --percent", ["fit", st, "--percent"])
    add("silently wrong", "study DIR --dry-run --export csv",
        ["study", st, "--dry-run", "--export", "csv"])
    add("silently wrong", "fit --at 1e-300", ["fit", "r.csv", "--at", "1e-300"],
        _big_results(30))
    add("silently wrong", "recommend FILE --target-flops below the data",
        ["recommend", "r.csv", "--target-flops", "1e5"], _big_results(30))
    add("silently wrong", "quickstart --out FILE --dry-run",
        ["quickstart", "--out", "f", "--dry-run"], files(f="mine"))
    return out


# ----------------------------------------------------------------------------- running


def _child(case: Case, d: Path) -> None:
    """Runs in the forked child: `netscale ARGV` as `python -m netscale` would."""
    os.chdir(d)
    fd_out = os.open(d.parent / f"{d.name}.out", os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
    fd_err = os.open(d.parent / f"{d.name}.err", os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
    os.dup2(fd_out, 1)
    os.dup2(fd_err, 2)
    sys.stdout = io.TextIOWrapper(os.fdopen(1, "wb", closefd=False), write_through=True)
    sys.stderr = io.TextIOWrapper(os.fdopen(2, "wb", closefd=False), write_through=True)
    code = 1
    try:
        from netscale.cli.main import main

        code = main(case.argv)
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except BaseException:  # what the interpreter would print
        traceback.print_exc()
        code = 1
    with contextlib.suppress(Exception):
        sys.stdout.flush()
        sys.stderr.flush()
    os._exit(int(code) & 0xFF)


def _snapshot(d: Path) -> set[str]:
    return {str(p.relative_to(d)) for p in d.rglob("*")}


def run_case(case: Case, work: Path, index: int) -> Outcome:
    d = work / f"c{index:04d}"
    d.mkdir()
    if case.setup is not None:
        case.setup(d)
    before = _snapshot(d)
    t0 = time.perf_counter()
    if case.environment is not None:
        code, err = _run_environment(case, d)
    elif case.read_only:
        code, err = _run_subprocess(case, d)
    else:
        pid = os.fork()
        if pid == 0:  # pragma: no cover - child
            _child(case, d)
        code = None
        deadline = time.monotonic() + case.timeout
        while True:
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                code = os.waitstatus_to_exitcode(status)
                break
            if time.monotonic() > deadline:
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
                break
            time.sleep(0.02)
        err = (work / f"{d.name}.err").read_text(errors="replace")
    seconds = time.perf_counter() - t0
    new = [] if case.keeps_files else sorted(_snapshot(d) - before)
    problem = case.verify(d) if case.verify is not None and d.exists() else None
    return Outcome(case, code, err, seconds, new, problem)


def _run_environment(case: Case, d: Path) -> tuple[int | None, str]:
    """A subprocess with stdout to /dev/full or closed, a file-size limit, a deleted working
    directory or extra environment variables (``case.environment``)."""
    import resource

    env_spec = case.environment or {}
    env = {**os.environ, "PYTHONPATH": str(_src()), **dict(env_spec.get("env", {}))}  # type: ignore[call-overload]
    fsize = int(env_spec.get("fsize", 0))  # type: ignore[call-overload]
    cwd = d
    if env_spec.get("rm_cwd"):
        cwd = d / "gone"
        cwd.mkdir()

    def pre() -> None:
        if fsize:
            resource.setrlimit(resource.RLIMIT_FSIZE, (fsize, fsize))
        if env_spec.get("rm_cwd"):
            os.rmdir(cwd)
        if env_spec.get("stdout") == "closed":
            os.close(1)

    out: object = subprocess.DEVNULL
    if env_spec.get("stdout") == "full":
        out = open("/dev/full", "w")  # noqa: SIM115 - closed below
    elif env_spec.get("stdout") == "file":
        out = open(d.parent / f"{d.name}.stdout", "w")  # noqa: SIM115 - closed below
    try:
        r = subprocess.run([sys.executable, "-m", "netscale", *case.argv], cwd=cwd, env=env,
                           stdout=out, stderr=subprocess.PIPE, text=True,  # type: ignore[arg-type]
                           timeout=case.timeout, preexec_fn=pre)
    except subprocess.TimeoutExpired:
        return None, ""
    finally:
        if hasattr(out, "close"):
            out.close()  # type: ignore[union-attr]
    return r.returncode, r.stderr


def _run_subprocess(case: Case, d: Path) -> tuple[int | None, str]:
    prefix: list[str] = []
    if os.geteuid() == 0:
        setpriv = shutil.which("setpriv")
        if setpriv is None:
            return None, "cannot simulate a read-only place as root without setpriv"
        prefix = [setpriv, "--bounding-set", "-dac_override,-dac_read_search"]
    env = {**os.environ, "PYTHONPATH": str(_src())}
    try:
        r = subprocess.run([*prefix, sys.executable, "-m", "netscale", *case.argv], cwd=d,
                           env=env, capture_output=True, text=True, timeout=case.timeout)
    except subprocess.TimeoutExpired:
        return None, ""
    return r.returncode, r.stderr


# ----------------------------------------------------------------------------- report

def _argv() -> str:
    import shlex

    return " ".join(shlex.quote(a) for a in sys.argv[1:])


def _cpu() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.machine()


KINDS = ("clear error", "traceback", "hang/crash", "accepted (silently wrong)")


GUARANTEES = r"""## Input and output guarantees

What netscale guarantees at the places where files, streams and the environment meet it. Each
is enforced by one mechanism that every command goes through, tested per class in
`tests/test_reliability_io.py`, fuzzed in `tests/test_fuzz_cli.py` and counted in the table
above (categories output nodes, write failures, environment, hostile YAML, special inputs,
results files, silently wrong).

- **Nothing at an output path is replaced unless it is a regular file.** Every writer (`export
  -o`, `study --export -o`, `scale --out`, `bench --out`, `recommend --out`, `bench --fit
  --plot`, reports, checkpoints) goes through `netscale.util.io`: a regular file is replaced
  atomically (temp file, fsync, rename); a character device or a FIFO with a reader
  (`-o /dev/null`, `-o /dev/stdout`) is written through, never replaced; a symbolic link is
  followed and its target written atomically (the link stays); a directory, a socket, a block
  device, a FIFO without a reader and a loop of links are refused in one line, before any
  work where the command checks its outputs up front.
- **A write the environment refuses is one line naming the path**: disk full, quota, file
  too large (`ulimit -f`: the process ignores SIGXFSZ, so the write fails with EFBIG instead of
  killing it), read-only file system, permission denied. No temp file is left; `export`
  serializes in memory first, so a full disk never aborts inside the C++ zip writer; `bench`
  prints its measurements to stdout (as JSON) when `--out` or `--plot` cannot be written.
- **Temp files carry netscale's marker** (`.NAME.netscale-XXXXXXXX.tmp`); sweeps remove only
  regular files with that marker owned by the user, so a user's own `.budget.2024_Q3x.tmp`
  in an output directory is never touched.
- **Inputs are regular files with size caps**: configs, specs, `base:` files and results-file
  `model`s (16 MiB), results files (512 MiB), IDX/CIFAR data (4 GiB after decompression).
  `/dev/zero`, a FIFO, or a link to them is refused without reading or blocking.
- **YAML and JSON are parsed with bounds** (`netscale.util.safeload`): aliases may expand to
  at most 200,000 values (alias bombs are refused, not expanded) and never to themselves;
  duplicate keys are refused; integers beyond the float range (about 1.8e308) are refused
  before any conversion; nesting hundreds of levels deep (files, `--set`, `--kwarg`) is one
  line. Values quoted in messages are shortened, and the CLI prints at most 1,000 characters
  of any error.
- **Results files load in linear time** (100,000 rows: see the results-files row above); a
  `#` comment line is dropped only between records, so a quoted field spanning lines stays
  one field; a column named twice in the header is refused.
- **Data files are validated**: CIFAR `data` must be an N x 3072 uint8 array and labels
  integer class indices below 100,000 (`0.5`, booleans, `2**40` refused); IDX labels likewise.
- **The process's environment**: stdout to a full device or past `ulimit -f`, a closed
  stdout, a deleted working directory: one line each, exit code 2. Characters the output
  encoding lacks (`×`, `α` under `PYTHONIOENCODING=ascii`, names from non-UTF-8 paths) are
  escaped, never a crash.
- **Output injection**: every CSV netscale writes prefixes a text cell starting with `=`,
  `+`, `-`, `@`, a tab or a carriage return with `'` (a spreadsheet shows it as text); group
  names read from results files have control characters escaped (`\x1b`), so printing them
  cannot drive the terminal.
- **Flags are never silently ignored or meaningless**: `bench --fit --from F --predict X`,
  `fit STUDY --percent`, `study DIR --dry-run --export csv`, `fit --at` below 1, a
  `recommend FILE --target-flops` below the file's smallest model, a study `name` that is a
  path, `--seed` above 2**63 - 1 are refused; `quickstart --out FILE --dry-run` fails like
  the real run; `scale --out DIR` names the files it wrote.
- **A plan needs no data, a name must be right**: `study --dry-run` refuses a dataset name
  that is neither known nor a folder (a typo can never work); a data folder or a known
  dataset that is not on this machine (it may be on the one that runs the study) is
  planned with a "data missing" note and the training time "not estimated" (exit 0, counted
  as a clear outcome). `train --resume` on a finished run reprints its result (exit 0);
  on a directory without a run it is refused."""


def summarize(outcomes: Sequence[Outcome], seconds: float, timeout: float = TIMEOUT) -> str:
    by_cat: dict[str, Counter[str]] = defaultdict(Counter)
    partial: Counter[str] = Counter()
    for o in outcomes:
        by_cat[o.case.category][o.kind if o.kind in KINDS else "other"] += 1
        if o.new_files:
            partial[o.case.category] += 1
    total: Counter[str] = Counter()
    for c in by_cat.values():
        total.update(c)
    lines = [
        "# Reliability: malformed inputs",
        "",
        "Every input below is something a user can type or point at that netscale must "
        "refuse. A case passes when the command exits with code 2 and prints exactly one line "
        "on stderr (no traceback), within the time limit, leaving no file behind; a write "
        "through a device and a valid input at scale pass when they succeed and the node at "
        "the output path is still in place.",
        "",
        f"Generated by `PYTHONPATH=src python benchmarks/fuzz_inputs.py {_argv()}` on "
        f"{_cpu()}, {platform.system()} ({os.cpu_count()} CPUs), Python "
        f"{platform.python_version()}; {len(outcomes)} cases in {seconds:.0f} s. Each case runs "
        f"in a forked child of the script (timeout {timeout:.0f} s); read-only cases run as a "
        "subprocess with permission bits enforced.",
        "",
        "| category | tried | clear one-line errors | tracebacks | hangs / crashes | "
        "silently accepted | other | files left behind |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for cat in sorted(by_cat):
        c = by_cat[cat]
        lines.append(f"| {cat} | {sum(c.values())} | {c['clear error']} | {c['traceback']} | "
                     f"{c['hang/crash']} | {c['accepted (silently wrong)']} | {c['other']} | "
                     f"{partial[cat]} |")
    lines.append(f"| **total** | **{len(outcomes)}** | **{total['clear error']}** | "
                 f"**{total['traceback']}** | **{total['hang/crash']}** | "
                 f"**{total['accepted (silently wrong)']}** | **{total['other']}** | "
                 f"**{sum(partial.values())}** |")
    lines += [
        "",
        "Categories: flag values of every subcommand (numbers out of range, non-finite, empty "
        "lists, thread counts, devices without CUDA, flags that would be ignored), spec files "
        "and pycls YAMLs (wrong types, missing or unknown keys, huge sizes, deep nesting, "
        "binary garbage), study configs (every key with a wrong type or value), IDX and "
        "image folders (bad magic, truncated, mismatched counts, corrupt images), checkpoints "
        "(truncated, not a pickle, unsafe pickle, corrupt fields), output paths (a directory "
        "where a file is expected and the reverse, read-only places) and sizes that cannot "
        "fit in memory or in the time budget.",
        "",
        "How the classes are prevented: `netscale.util.validate` (ranges, devices, output "
        "paths), `netscale.complexity.limits` (a lower bound of a model's memory from its "
        "analytic counts, a lower bound of a benchmark's time), type checks naming the key "
        "in `netscale.study.config`, "
        "field checks in `netscale.train.checkpoint`, strict JSON through "
        "`netscale.util.jsonio`, and `tests/test_fuzz_cli.py` (Hypothesis: generated "
        "malformed inputs for every subcommand, asserting exit 2, one line, no traceback, "
        "no file left behind).",
    ]
    bad = [o for o in outcomes if o.kind != "clear error" or o.new_files]
    lines += ["", "## Cases that did not pass", ""]
    if not bad:
        lines.append("None.")
    for o in bad:
        first = next((ln for ln in reversed(o.stderr.splitlines()) if ln.strip()), "")
        extra = f"; left {', '.join(o.new_files[:3])}" if o.new_files else ""
        lines.append(f"- {o.case.category} / {o.case.name}: {o.kind}{extra} — "
                     f"`{first[:160]}`")
    lines += ["", "## Slowest cases", ""]
    for o in sorted(outcomes, key=lambda o: -o.seconds)[:8]:
        lines.append(f"- {o.case.category} / {o.case.name}: {o.seconds:.1f} s")
    lines += ["", "## Sample messages", ""]
    seen: set[str] = set()
    for o in outcomes:
        if o.kind == "clear error" and o.case.category not in seen:
            seen.add(o.case.category)
            lines.append(f"- {o.case.category} / {o.case.name}: `{o.stderr.strip()[:200]}`")
    return "\n".join(lines) + "\n\n" + GUARANTEES + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--update-docs", action="store_true",
                    help=f"write {DOC.relative_to(ROOT)} (default: print the table only)")
    ap.add_argument("-k", help="only cases whose category or name contains this text (several: "
                    "separated by |)")
    ap.add_argument("--verbose", "-v", action="store_true", help="one line per case")
    ap.add_argument("--timeout", type=float, default=TIMEOUT,
                    help=f"seconds per case before it counts as a hang (default {TIMEOUT:g})")
    args = ap.parse_args(argv)
    os.environ.setdefault("MPLBACKEND", "Agg")
    # import what the commands import, once, before forking
    import matplotlib  # noqa: F401
    import torch  # noqa: F401
    import yaml  # noqa: F401

    import netscale.cli.main as cli_main
    from netscale.advise import recommend, study_fits  # noqa: F401
    from netscale.bench import harness  # noqa: F401
    from netscale.report import html  # noqa: F401
    from netscale.study import runner  # noqa: F401
    from netscale.train import trainer  # noqa: F401

    cli_main.build_parser()
    with tempfile.TemporaryDirectory(prefix="netscale-fuzz-") as tmp:
        tmp_path = Path(tmp)
        fx = tmp_path / "fixtures"
        fx.mkdir()
        build_fixtures(fx)
        table = cases(fx) + io_cases(fx)
        for c in table:
            c.timeout = max(c.timeout, args.timeout) if c.timeout != TIMEOUT else args.timeout
        if args.k:
            keys = args.k.split("|")
            table = [c for c in table if any(k in c.category or k in c.name for k in keys)]
        work = tmp_path / "work"
        work.mkdir()
        t0 = time.perf_counter()
        outcomes = []
        for i, case in enumerate(table):
            o = run_case(case, work, i)
            outcomes.append(o)
            if args.verbose or o.kind != "clear error" or o.new_files:
                left = f" files: {o.new_files[:3]}" if o.new_files else ""
                last = o.stderr.strip().splitlines()[-1][:200] if o.stderr.strip() else ""
                print(f"[{i + 1}/{len(table)}] {case.category} / {case.name}: {o.kind} "
                      f"({o.seconds:.1f} s){left}\n    {last}", file=sys.stderr, flush=True)
        seconds = time.perf_counter() - t0
        # make the read-only fixtures removable
        for p in (fx / "ro").rglob("*"):
            p.chmod(stat.S_IRWXU)
        (fx / "ro").chmod(stat.S_IRWXU)
    text = summarize(outcomes, seconds, args.timeout)
    if args.update_docs:
        DOC.write_text(text)
        print(f"wrote {DOC}", file=sys.stderr)
    print(text)
    bad = [o for o in outcomes if o.kind != "clear error" or o.new_files]
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
