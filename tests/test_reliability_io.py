"""Input/output reliability at the roots: the output rule of netscale.util.io (devices, FIFOs,
links, full disks, temp-file markers), guarded input reading, bounded parsing
(netscale.util.safeload), safe CSV/terminal text (netscale.util.text), results files, data
labels, and the CLI entry point's handling of a hostile environment."""

from __future__ import annotations

import contextlib
import csv
import errno
import io
import json
import os
import resource
import socket
import stat
import subprocess
import sys
import threading
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pytest

from netscale.errors import NetscaleError
from netscale.util.io import (
    OutputError,
    atomic_path,
    atomic_write,
    atomic_write_text,
    read_input_bytes,
    sweep_temp_files,
)
from netscale.util.safeload import load_json, load_yaml, short_repr
from netscale.util.text import csv_cell, csv_dict_writer, csv_writer, visible

if TYPE_CHECKING:
    from netscale.advise.sources import StudyResults

SRC = Path(__file__).resolve().parents[1] / "src"
BOMB = "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join(['*' + chr(97 + i)] * 9)}]\n" for i in range(8))


def _cli(*args: str, cwd: Path, stdout: object = subprocess.PIPE, env: dict | None = None,
         preexec: object = None, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    e = {**os.environ, "PYTHONPATH": str(SRC), **(env or {})}
    return subprocess.run([sys.executable, "-m", "netscale", *args], cwd=cwd, env=e,
                          stdout=stdout, stderr=subprocess.PIPE, text=True, timeout=timeout,
                          preexec_fn=preexec)  # type: ignore[arg-type]


def _one_line(err: str) -> str:
    assert "Traceback" not in err, err
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1, err
    return lines[0]


def _temps(d: Path) -> list[str]:
    return sorted(p.name for p in d.iterdir() if ".netscale-" in p.name)


# ----------------------------------------------------------------------------- 1. output rule


def test_a_character_device_is_written_through_not_replaced(tmp_path):
    dev = tmp_path / "null.pt"
    os.mknod(dev, 0o644 | stat.S_IFCHR, os.makedev(1, 3))  # /dev/null's numbers
    atomic_write_text(dev, "hello")
    st = os.lstat(dev)
    assert stat.S_ISCHR(st.st_mode) and os.major(st.st_rdev) == 1 and os.minor(st.st_rdev) == 3
    assert _temps(tmp_path) == []
    atomic_write_text("/dev/null", "x")
    assert stat.S_ISCHR(os.lstat("/dev/null").st_mode)


def test_dev_stdout_redirected_to_a_file_is_written_through_that_file(tmp_path):
    out = tmp_path / "out.txt"
    out.write_text("printed before\n")
    ino = out.stat().st_ino
    with open(out, "a") as f:
        subprocess.run([sys.executable, "-c", "from netscale.util.io import atomic_write_text;"
                        " atomic_write_text('/dev/stdout', 'csv rows\\n')"], stdout=f,
                       check=True, env={**os.environ, "PYTHONPATH": str(SRC)}, timeout=60)
    assert out.stat().st_ino == ino and out.read_text() == "printed before\ncsv rows\n"


def test_a_fifo_with_a_reader_receives_the_bytes_and_stays_a_fifo(tmp_path):
    fifo = tmp_path / "pipe.csv"
    os.mkfifo(fifo)
    got: list[bytes] = []
    reader = threading.Thread(target=lambda: got.append(fifo.read_bytes()))
    reader.start()
    for _ in range(200):  # wait until the reader has the FIFO open
        try:
            atomic_write_text(fifo, "a,b\n")
            break
        except OutputError:
            threading.Event().wait(0.01)
    reader.join(10)
    assert got == [b"a,b\n"] and stat.S_ISFIFO(os.lstat(fifo).st_mode)


def test_a_fifo_without_reader_is_refused_without_blocking(tmp_path):
    fifo = tmp_path / "pipe.json"
    os.mkfifo(fifo)
    with pytest.raises(OutputError, match="FIFO with no reader"):
        atomic_write_text(fifo, "{}")
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)


def test_a_symlink_is_followed_and_its_target_replaced_atomically(tmp_path):
    (tmp_path / "real.yaml").write_text("old")
    link = tmp_path / "link.yaml"
    link.symlink_to("real.yaml")
    atomic_write_text(link, "new")
    assert link.is_symlink() and os.readlink(link) == "real.yaml"
    assert (tmp_path / "real.yaml").read_text() == "new"
    dangling = tmp_path / "dangling.yaml"
    dangling.symlink_to("created.yaml")
    atomic_write_text(dangling, "made")
    assert dangling.is_symlink() and (tmp_path / "created.yaml").read_text() == "made"
    assert _temps(tmp_path) == []


@pytest.mark.parametrize("kind", ["loop", "dir", "socket"])
def test_link_loops_directories_and_sockets_are_refused_in_one_line(tmp_path, kind):
    p = tmp_path / "out.json"
    if kind == "loop":
        (tmp_path / "other").symlink_to("out.json")
        p.symlink_to("other")
    elif kind == "dir":
        p.mkdir()
    else:
        s = socket.socket(socket.AF_UNIX)
        s.bind(str(p))
        s.close()
    with pytest.raises(OutputError) as e:
        atomic_write_text(p, "{}")
    assert "\n" not in str(e.value) and str(p) in str(e.value)
    assert {"loop": "loop of symbolic links", "dir": "a directory",
            "socket": "a socket"}[kind] in str(e.value)
    assert _temps(tmp_path) == []


def test_output_directories_through_a_link_loop_are_one_line(tmp_path):
    from netscale.util.validate import check_output_dir, check_output_file

    (tmp_path / "a").symlink_to("b")
    (tmp_path / "b").symlink_to("a")
    with pytest.raises(NetscaleError, match="is a loop of symbolic links; remove it"):
        check_output_dir(tmp_path / "a", "--out")
    with pytest.raises(NetscaleError, match="loop of symbolic links"):
        check_output_file(tmp_path / "a", "--out")


def test_atomic_path_publishes_only_on_success_and_through_devices(tmp_path):
    out = tmp_path / "m.onnx"
    with pytest.raises(RuntimeError), atomic_path(out, suffix=".onnx") as tmp:
        tmp.write_bytes(b"partial")
        raise RuntimeError("exporter failed")
    assert not out.exists() and _temps(tmp_path) == []
    with atomic_path(out, suffix=".onnx") as tmp:
        assert tmp.name.startswith(".m.onnx.netscale-") and tmp.name.endswith(".tmp.onnx")
        tmp.write_bytes(b"model")
    assert out.read_bytes() == b"model"
    with atomic_path("/dev/null") as tmp:
        tmp.write_bytes(b"model")
    assert stat.S_ISCHR(os.lstat("/dev/null").st_mode)


# ----------------------------------------------------------------------------- 2. write failures


@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EFBIG, errno.EROFS, errno.EACCES])
def test_an_environmental_write_failure_is_one_line_naming_the_path(tmp_path, code):
    def write(f: object) -> None:
        raise OSError(code, os.strerror(code))

    with pytest.raises(OutputError) as e:
        atomic_write(tmp_path / "r.json", write)
    assert isinstance(e.value, NetscaleError) and isinstance(e.value, OSError)
    assert e.value.errno == code and e.value.filename == str(tmp_path / "r.json")
    assert str(e.value).startswith(f"cannot write {str(tmp_path / 'r.json')!r}: ")
    assert os.listdir(tmp_path) == []


def _fsize(limit: int):
    return lambda: resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))


def test_file_size_limit_is_one_line_and_leaves_no_temp_file(tmp_path):
    r = _cli("scale", "ResNet-20-CIFAR", "-s", "2", "--out", "big.yaml", cwd=tmp_path,
             preexec=_fsize(64))
    line = _one_line(r.stderr)
    assert r.returncode == 2 and "big.yaml" in line and "file-size limit" in line
    assert os.listdir(tmp_path) == []


def test_bench_keeps_its_measurement_when_out_cannot_be_written(tmp_path):
    r = _cli("bench", "ResNet-20-CIFAR", "--budget", "0.3", "--out", "b.json", cwd=tmp_path,
             preexec=_fsize(100))
    line = _one_line(r.stderr)
    assert r.returncode == 2 and "'b.json'" in line and "measurements are on standard output" \
        in line
    rows = json.loads(r.stdout[r.stdout.index("{"):])["results"]  # after the header line
    assert rows[0]["model"] == "ResNet-20-CIFAR" and rows[0]["time_ms"] > 0
    assert os.listdir(tmp_path) == []


def test_a_full_disk_is_one_line_and_leaves_no_temp_file(tmp_path):
    mnt = tmp_path / "small"
    mnt.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(mnt)],
                      capture_output=True).returncode != 0:
        pytest.skip("cannot mount a small tmpfs here (needs root and mount permission)")
    try:
        with open(mnt / "filler", "wb", buffering=0) as f, contextlib.suppress(OSError):
            f.write(b"\0" * (1 << 20))  # fills it up
        r = _cli("scale", "ResNet-20-CIFAR", "-s", "2", "--out", str(mnt / "s.yaml"),
                 cwd=tmp_path)
        line = _one_line(r.stderr)
        assert r.returncode == 2 and "disk is full" in line and "s.yaml" in line
        assert sorted(os.listdir(mnt)) == ["filler"]
    finally:
        subprocess.run(["umount", str(mnt)], check=False)


def test_the_cli_net_gives_one_line_for_an_os_error_without_file_name():
    from netscale.cli.main import _one_line_os_error

    line = _one_line_os_error("report", OSError(errno.ENOSPC, "No space left on device"))
    assert line.startswith("netscale report: error: No space left on device") and "\n" not in line


# ----------------------------------------------------------------------------- 4. temp sweep


def test_the_sweep_removes_only_netscales_own_temp_files(tmp_path):
    mine = tmp_path / ".index.html.netscale-abc12345.tmp"
    mine.write_text("partial")
    export_tmp = tmp_path / ".m.pt2.netscale-zz_99aaa.tmp.pt2"
    export_tmp.write_text("partial")
    users = [tmp_path / ".budget.2024_Q3x.tmp", tmp_path / ".notes.abcdefgh.tmp",
             tmp_path / "netscale-abc12345.tmp"]
    for u in users:
        u.write_text("the user's")
    link = tmp_path / ".x.netscale-abcdefgh.tmp"
    link.symlink_to(users[0])
    removed = sweep_temp_files(tmp_path)
    assert sorted(removed) == sorted([mine, export_tmp])
    assert all(u.read_text() == "the user's" for u in users) and link.is_symlink()


# ----------------------------------------------------------------------------- 5. YAML bombs


def test_an_alias_bomb_is_refused_at_load():
    with pytest.raises(NetscaleError, match="aliases expand to more than"):
        load_yaml(BOMB, "s.yaml")
    assert load_yaml("a: &a [1, 2]\nb: *a\n", "s.yaml") == {"a": [1, 2], "b": [1, 2]}


def test_a_recursive_alias_and_duplicate_keys_are_refused():
    with pytest.raises(NetscaleError, match="refers to itself"):
        load_yaml("a: &a [1, *a]\n", "s.yaml")
    with pytest.raises(NetscaleError, match=r"duplicate key 'factors' \(lines 1 and 3\)"):
        load_yaml("factors: [1]\nseeds: [0]\nfactors: [2]\n", "s.yaml")
    merged = load_yaml("base: &b {x: 1, y: 2}\nc:\n  <<: *b\n  y: 3\n", "s.yaml")
    assert merged["c"] == {"x": 1, "y": 3}  # merge keys still override


def test_messages_quote_values_in_bounded_length():
    assert len(short_repr(list(range(10**6)))) <= 100
    assert short_repr(10**5000) == "<integer of 16,610 bits>"
    assert len(short_repr({"k": "x" * 10**6})) <= 100
    from netscale.util.serial import _scalar

    with pytest.raises(NetscaleError) as e:
        _scalar(["x"] * 10**5, int, "recipe.epochs", True)
    assert len(str(e.value)) < 200


def test_an_alias_bomb_in_a_study_config_and_in_set_is_one_line(tmp_path, run_cli):
    (tmp_path / "s.yaml").write_text(BOMB.replace("a:", "description:", 1))
    code, _, err = run_cli("study", str(tmp_path / "s.yaml"), "--dry-run")
    assert code == 2 and "aliases expand" in _one_line(err)
    (tmp_path / "t.yaml").write_text("bases: [ResNet-20-CIFAR]\nstrategies: [d]\n"
                                     "factors: [2]\n")
    code, _, err = run_cli("study", str(tmp_path / "t.yaml"), "--dry-run", "--set",
                           "factors=" + "[" * 20000)
    assert code == 2 and "nested too deeply" in _one_line(err)


# ----------------------------------------------------------------------------- 7. huge integers


def test_integers_beyond_float_range_are_refused_before_any_conversion(tmp_path, run_cli):
    big = str(10**400)
    with pytest.raises(NetscaleError, match="beyond the float range"):
        load_yaml(f"factors: [{big}]", "s.yaml")
    with pytest.raises(NetscaleError, match="beyond the float range"):
        load_json(f'{{"tolerance": {big}}}', "s.json")
    with pytest.raises(NetscaleError, match="digits"):
        load_json("[" + "9" * 5000 + "]", "r.json")
    assert load_yaml("n: 12345678901234567890", "s.yaml") == {"n": 12345678901234567890}
    (tmp_path / "s.yaml").write_text(f"bases: [ResNet-20-CIFAR]\nstrategies: [d]\n"
                                     f"factors: [2]\ntolerance: {big}\n")
    code, _, err = run_cli("study", str(tmp_path / "s.yaml"), "--dry-run")
    assert code == 2 and "beyond the float range" in _one_line(err)
    code, _, err = run_cli("bench", "ResNet-20-CIFAR", "--seed", str(2**64))
    assert code == 2 and "too large for a seed" in _one_line(err)


def _load_results(tmp_path: Path, name: str, text: str) -> StudyResults:
    """``text`` written to ``tmp_path/NAME`` and loaded as a results file."""
    from netscale.advise.results_io import load_source

    p = tmp_path / name
    p.write_text(text)
    return load_source(p)


def test_a_results_json_with_a_huge_integer_is_one_line(tmp_path):
    text = json.dumps([{"group": "a", "flops": 1, "top1_err": 0.5}]).replace(
        '"flops": 1', f'"flops": {10**400}')
    with pytest.raises(NetscaleError, match="beyond the float range"):
        _load_results(tmp_path, "r.json", text)


# ----------------------------------------------------------------------------- 8. results files


def test_results_factors_are_relative_to_the_smallest_model_of_group_or_base(tmp_path):
    study = _load_results(tmp_path, "r.csv", "group,flops,top1_err\nbase,100,0.5\nw,400,0.4\n"
                          "w,200,0.45\nd,50,0.6\nd,300,0.3\n")
    factors = {(t.strategy, t.flops): t.factor for t in study.trials}
    assert factors == {("base", 100): 1.0, ("w", 400): 4.0, ("w", 200): 2.0,
                       ("d", 50): 1.0, ("d", 300): 6.0}


def test_results_files_load_in_linear_time_without_quadratic_scans(tmp_path, monkeypatch):
    """Every row is looked at a bounded number of times: the rows' group is read O(n)."""
    from netscale.advise import results_io

    rows = [f"g{i % 7},{1000 + i},0.5" for i in range(3000)]
    p = tmp_path / "r.csv"
    p.write_text("group,flops,top1_err\n" + "\n".join(rows) + "\n")
    reads = 0

    class CountingDict(dict):  # type: ignore[type-arg]
        def __getitem__(self, key: object) -> object:
            nonlocal reads
            if key == "group":
                reads += 1
            return super().__getitem__(key)

    real = results_io._row_item
    monkeypatch.setattr(results_io, "_row_item",
                        lambda *a, **k: CountingDict(real(*a, **k)))
    study = results_io.load_source(p)
    assert len(study.trials) == 3000
    assert reads <= 5 * 3000


def test_deeply_nested_results_json_is_one_line(tmp_path):
    with pytest.raises(NetscaleError, match="nested too deeply"):
        _load_results(tmp_path, "r.json", "[" * 100_000 + "]" * 100_000)


def test_csv_comments_never_split_or_merge_quoted_fields(tmp_path):
    trials = _load_results(tmp_path, "r.csv", '# a comment\ngroup,flops,top1_err,device\n'
                           'A,100,0.5,"two\n# not a comment\nlines"\n# another comment\n'
                           'A,200,0.4,cpu\n').trials
    assert len(trials) == 2
    assert trials[0].bench == [] and trials[1].flops == 200


def test_a_duplicated_csv_header_is_refused(tmp_path):
    with pytest.raises(NetscaleError, match="column 'flops' appears twice"):
        _load_results(tmp_path, "r.csv", "group,flops,top1_err,FLOPS\nA,100,0.5,200\n")


def test_percent_with_a_study_directory_is_refused(tmp_path):
    from netscale.advise.results_io import load_source

    with pytest.raises(NetscaleError, match="apply to a results file"):
        load_source(tmp_path, percent=True)


# ----------------------------------------------------------------------------- 9. special inputs


def test_inputs_must_be_regular_files_within_a_size_cap(tmp_path):
    with pytest.raises(NetscaleError, match="a character device, not a regular file"):
        read_input_bytes("/dev/zero", "spec file")
    link = tmp_path / "zero.yaml"
    link.symlink_to("/dev/zero")
    with pytest.raises(NetscaleError, match="a character device"):
        read_input_bytes(link, "spec file")
    fifo = tmp_path / "f.yaml"
    os.mkfifo(fifo)
    with pytest.raises(NetscaleError, match="a FIFO"):
        read_input_bytes(fifo, "study config")  # returns at once: nothing blocks
    big = tmp_path / "big.yaml"
    big.write_bytes(b"#" * 2000)
    with pytest.raises(NetscaleError, match="too large"):
        read_input_bytes(big, "spec file", 1000)
    assert read_input_bytes(big, "spec file", 2000) == b"#" * 2000


@pytest.mark.parametrize("target", ["/dev/zero", "fifo"])
def test_special_files_as_spec_base_config_or_results_model_are_one_line(tmp_path, run_cli,
                                                                         target):
    src = tmp_path / "special.yaml"
    if target == "fifo":
        os.mkfifo(src)
    else:
        src.symlink_to(target)
    (tmp_path / "derived.yaml").write_text(f"base: {src}\nresolution: 32\n")
    (tmp_path / "r.csv").write_text(f"group,model,top1_err\nA,{src},0.5\n")
    for args in (("info", str(src)), ("info", str(tmp_path / "derived.yaml")),
                 ("study", str(src), "--dry-run"), ("fit", str(tmp_path / "r.csv"))):
        code, _, err = run_cli(*args)
        assert code == 2 and "not a regular file" in _one_line(err), args


def _cifar(folder: Path, labels: object, data: object = None) -> Path:
    import pickle

    folder.mkdir()
    x = np.zeros((2, 3072), np.uint8) if data is None else data
    for name in ("data_batch_1", "test_batch"):
        with open(folder / name, "wb") as f:
            pickle.dump({b"data": x, b"labels": labels}, f)
    return folder


@pytest.mark.parametrize(("labels", "data", "message"), [
    ([0, 0.5], None, "must be integer class labels, got 0.5"),
    ([0, 2**40], None, "labels must be class indices from 0 to 99,999"),
    ([0, -1], None, "labels must be class indices"),
    ([True, 1], None, "must be integer class labels"),
    ([0, 1], np.zeros((2, 3072), np.float32), "'data' must be an N x 3072 uint8 array"),
    ([0, 1], np.zeros((2**30, 2**30), "V0"), "'data' must be an N x 3072 uint8 array"),
])
def test_cifar_labels_and_data_are_validated(tmp_path, labels, data, message):
    from netscale.data.formats import load_cifar_folder

    folder = _cifar(tmp_path / "c", labels, data)
    with pytest.raises(NetscaleError, match=message):
        load_cifar_folder(folder)


# ----------------------------------------------------------------------------- 12. environment


def test_stdout_to_dev_full_closed_or_ascii_is_one_line(tmp_path):
    with open("/dev/full", "w") as full:
        r = _cli("models", cwd=tmp_path, stdout=full)
    assert r.returncode == 2 and "cannot write to standard output (No space left on device)" \
        in _one_line(r.stderr)
    r = subprocess.run(f"{sys.executable} -m netscale models >&-", shell=True,
                       env={**os.environ, "PYTHONPATH": str(SRC)}, cwd=tmp_path,
                       stderr=subprocess.PIPE, text=True, timeout=120)
    assert r.returncode == 2 and "standard output is closed" in _one_line(r.stderr)
    r = _cli("recommend", "--help", cwd=tmp_path, env={"PYTHONIOENCODING": "ascii"})
    assert r.returncode == 0 and "Traceback" not in r.stderr


def test_a_deleted_working_directory_and_a_ulimit_on_stdout_are_one_line(tmp_path):
    gone = tmp_path / "gone"
    gone.mkdir()
    r = subprocess.run(f"cd {gone} && rmdir {gone} && {sys.executable} -m netscale models",
                       shell=True, env={**os.environ, "PYTHONPATH": str(SRC)},
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and "current directory no longer exists" in _one_line(r.stderr)
    with open(tmp_path / "o.txt", "w") as out:
        r = _cli("models", cwd=tmp_path, stdout=out, preexec=_fsize(100))
    assert r.returncode == 2 and "(File too large)" in _one_line(r.stderr)


def test_a_non_utf8_path_prints_escaped(tmp_path, run_cli):
    name = os.fsdecode(b"r\xff.csv")
    code, _, err = run_cli("fit", str(tmp_path / name))
    assert code == 2 and "r\\udcff.csv' does not exist" in _one_line(err)


# ----------------------------------------------------------------------------- 13. injection


def test_csv_cells_that_a_spreadsheet_would_run_are_neutralised():
    assert [csv_cell(v) for v in ("=HYPERLINK(1)", "+1", "-x", "@a", "\tz", "\rz", "ok", -1.5)
            ] == ["'=HYPERLINK(1)", "'+1", "'-x", "'@a", "'\tz", "'\rz", "ok", -1.5]
    buf = io.StringIO()
    w = csv_dict_writer(buf, ["group", "flops"])
    w.writeheader()
    w.writerow({"group": "=cmd|' /C calc'!A0", "flops": -3})
    buf2 = io.StringIO()
    csv_writer(buf2).writerow(["@SUM(A1)", 2])
    rows = list(csv.reader(io.StringIO(buf.getvalue())))
    assert rows[1] == ["'=cmd|' /C calc'!A0", "-3"]
    assert buf2.getvalue().strip() == "'@SUM(A1),2"


def test_group_names_from_files_are_printed_with_control_characters_escaped(tmp_path):
    assert visible("a\x1b[31mb\x07\n") == "a\\x1b[31mb\\x07\\x0a"
    source = _load_results(tmp_path, "r.csv", "group,flops,top1_err\n\"\x1b]0;pwned\x07\",100,0.5\n"
                           "=HYPERLINK(1),100,0.4\n")
    trials = source.trials
    assert trials[0].strategy == "\\x1b]0;pwned\\x07"
    text = source.csv_text()  # what report and --export write for a results file
    assert "\x1b" not in text and "\n'=HYPERLINK(1)," in text


# ----------------------------------------------------------------------------- memory guards


@pytest.mark.parametrize("flag", [("--resolution", "100000"), ("--batch-size", "100000000"),
                                  ("--factor", "1e12")])
def test_export_refuses_what_cannot_fit_in_memory_before_building(tmp_path, run_cli, flag):
    code, _, err = run_cli("export", "ResNet-20-CIFAR", "-f", "torchscript", "-o",
                           str(tmp_path / "m.pt"), *flag)
    assert code == 2 and "of memory" in _one_line(err) and os.listdir(tmp_path) == []


# ----------------------------------------------------------------------------- 11, 14. flags


def test_quickstart_dry_run_refuses_an_existing_file_as_out(tmp_path, run_cli):
    (tmp_path / "f").write_text("mine")
    code, _, err = run_cli("quickstart", "--out", str(tmp_path / "f"), "--dry-run")
    assert code == 2 and "is a file, not a directory" in _one_line(err)
    assert (tmp_path / "f").read_text() == "mine"


def test_scale_out_directory_says_which_files_it_wrote(tmp_path, run_cli):
    (tmp_path / "d").mkdir()
    code, out, _ = run_cli("scale", "ResNet-20-CIFAR", "-s", "2", "--out", str(tmp_path / "d"))
    written = sorted(p.name for p in (tmp_path / "d").iterdir())
    assert code == 0 and len(written) == 1
    assert out.strip().splitlines()[-1] == f"wrote {tmp_path / 'd' / written[0]} (netscale format)"


def test_a_study_name_that_is_a_path_is_refused(tmp_path, run_cli):
    (tmp_path / "s.yaml").write_text("name: ../../x\nbases: [ResNet-20-CIFAR]\n"
                                     "strategies: [d]\nfactors: [2]\ntrain: false\n")
    code, _, err = run_cli("study", str(tmp_path / "s.yaml"), "--dry-run")
    assert code == 2 and "is not a plain name" in _one_line(err)


@pytest.mark.parametrize("args", [
    ("study", "S", "--dry-run", "--export", "csv"),
    ("fit", "S", "--percent"),
    ("fit", "R", "--at", "1e-300"),
    ("recommend", "R", "--target-flops", "1e7"),
])
def test_flags_that_would_be_ignored_or_meaningless_are_refused(tmp_path, run_cli, args):
    from netscale.study.store import STORE_NAME

    study = tmp_path / "s"
    study.mkdir()
    (study / STORE_NAME).write_bytes(b"")
    rows = [f"{g},{x:g},{0.1 + 30 * x ** -0.3:.6f}" for g in "AB" for x in
            (1e8, 2e8, 4e8, 8e8, 1.6e9)]
    (tmp_path / "r.csv").write_text("group,flops,top1_err\n" + "\n".join(rows) + "\n")
    real = [{"S": str(study), "R": str(tmp_path / "r.csv")}.get(a, a) for a in args]
    code, out, err = run_cli(*real)
    line = _one_line(err)
    assert code == 2 and out == "", line
    assert {"study": "give one of them", "fit": ("apply to a results file" if "--percent" in args
                                                  else "is below 1"),
            "recommend": "below the smallest model"}[args[0]] in line
