"""`info --module pkg.mod:fn` finds modules in the current directory (as `python -m` does),
also when netscale runs as the console script (whose sys.path[0] is its bin directory);
`./run.sh` ends by saying how to put `netscale` on PATH; the runtime benchmark writes the
tracked docs/ figure only with --update-docs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_info_module_from_the_current_directory(tmp_path: Path) -> None:
    proj = tmp_path / "proj"
    (proj / "mypkg").mkdir(parents=True)
    (proj / "mypkg" / "__init__.py").write_text("")
    (proj / "mypkg" / "nets.py").write_text(
        "import torch.nn as nn\n\n"
        "def make():\n"
        "    return nn.Sequential(nn.Conv2d(3, 4, 3, bias=False), nn.Flatten(),\n"
        "                         nn.Linear(4 * 6 * 6, 2, bias=False))\n")
    # a launcher outside the project, like the `netscale` console script in .venv/bin
    bindir = tmp_path / "bin"
    bindir.mkdir()
    launcher = bindir / "netscale_entry.py"
    launcher.write_text("import sys\nfrom netscale.cli.main import main\nsys.exit(main())\n")
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    cmd = [sys.executable, str(launcher), "info", "--module", "mypkg.nets:make",
           "--input-shape", "3,8,8", "--json"]
    r = subprocess.run(cmd, cwd=proj, capture_output=True, text=True, env=env, timeout=120,
                       check=False)
    assert r.returncode == 0, r.stderr
    data = json.loads(r.stdout)
    assert data["flops"] == 4 * 3 * 9 * 36 + 144 * 2  # conv 3->4, 3x3 on 6x6, then linear
    # from elsewhere it is not found: one line naming the directory searched
    r = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, env=env, timeout=120,
                       check=False)
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1
    assert "cannot import module 'mypkg.nets'" in r.stderr and str(tmp_path) in r.stderr


def test_run_sh_ends_with_the_path_hint() -> None:
    text = (ROOT / "run.sh").read_text()
    tail = text.strip().splitlines()[-3:]
    assert any("source .venv/bin/activate" in line and line.startswith("echo")
               for line in tail), tail
    assert tail[-1] == 'exit "$status"'  # the quickstart's exit code is kept
    r = subprocess.run(["bash", "-n", str(ROOT / "run.sh")], capture_output=True, text=True,
                       check=False)
    assert r.returncode == 0, r.stderr


def test_runtime_benchmark_leaves_docs_alone_by_default() -> None:
    r = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "bench_runtime_analysis.py"),
                        "--help"], capture_output=True, text=True, timeout=120, check=False,
                       env={**os.environ, "PYTHONPATH": str(ROOT / "src")})
    assert r.returncode == 0, r.stderr
    text = " ".join(r.stdout.split())
    assert "--update-docs" in text and "default ./runtime_cpu.png" in text
