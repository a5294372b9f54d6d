"""Node failure on Ray: several raylets on this machine (``ray.cluster_utils.Cluster``); the
node running a trial is killed mid-training, and the trial finishes on another node,
resuming from its checkpoint in the (shared) study directory, with nothing lost."""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

import ray  # a dev dependency (netscale[dev]); tested, never skipped
import yaml
from ray.cluster_utils import Cluster

from netscale.study.config import load_study_config
from netscale.study.planning import plan_trials
from netscale.study.quickstart import quickstart_base
from netscale.study.runner import run_study, trial_dir
from netscale.study.store import Store

EPOCHS = 3
TIMING_KEYS = {"train_time", "eval_time", "images_per_sec", "wall_time"}


def _config(tmp_path: Path, out: str) -> Path:
    base = tmp_path / "base.yaml"
    if not base.exists():
        quickstart_base(resolution=16).save(base)
    raw = {
        "name": "nodes", "out": out, "bases": ["base.yaml"], "strategies": ["w"],
        "factors": [1],
        "data": {"name": "digits", "subset": 512, "val_subset": 128},
        "recipe": {"epochs": EPOCHS, "batch_size": 32, "lr": 0.1, "warmup_epochs": 0,
                   "threads": 1},
        "bench": {"enabled": False}, "retries": 0, "resources": {"cpus": 1},
    }
    p = tmp_path / f"{out}.yaml"
    p.write_text(yaml.safe_dump(raw))
    return p


def _results(db: Path) -> list[dict[str, Any]]:
    with Store(db, readonly=True) as store:
        return [{"top1_err": t.top1_err, "loss": t.loss,
                 "epochs": [{k: v for k, v in e.items() if k not in TIMING_KEYS}
                            for e in t.epochs]} for t in store.trials()]


def _ancestors(pid: int) -> list[int]:
    out = []
    while pid > 1:
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            break
        pid = int(stat[stat.rindex(")") + 2:].split()[1])
        out.append(pid)
    return out


def _node_of(cluster: Cluster, pid: int) -> Any:
    """The cluster node whose raylet started worker process ``pid``."""
    up = set(_ancestors(pid))
    for node in cluster.worker_nodes:
        raylets = node.all_processes.get("raylet", [])
        if any(p.process.pid in up for p in raylets):
            return node
    return None


def test_trial_survives_the_death_of_its_node(tmp_path: Path) -> None:
    # the uninterrupted reference, in this process
    ref_cfg = load_study_config(_config(tmp_path, "ref"))
    assert run_study(ref_cfg, stream=None)["done"] == 1
    reference = _results(ref_cfg.out_dir / "results.sqlite")

    cfg = load_study_config(_config(tmp_path, "out"))
    (tid,) = [t.id for t in plan_trials(cfg)]
    ckpt = trial_dir(cfg, tid) / "train" / "checkpoint.pt"
    lock = trial_dir(cfg, tid) / "train" / ".lock"
    cluster = Cluster(initialize_head=True, head_node_args={
        "num_cpus": 0,  # the head runs the driver and the event queue, trials run on workers
        "_system_config": {"health_check_initial_delay_ms": 0, "health_check_period_ms": 500,
                           "health_check_failure_threshold": 4}})
    try:
        for _ in range(2):
            cluster.add_node(num_cpus=1)
        cluster.wait_for_nodes()
        ray.init(address=cluster.address, log_to_driver=False)
        result: dict[str, Any] = {}

        def drive() -> None:
            try:
                result["counts"] = run_study(cfg, executor="ray", stream=None)
            except BaseException as exc:  # surfaced by the assertions below
                result["error"] = exc

        th = threading.Thread(target=drive, daemon=True)
        th.start()
        db = cfg.out_dir / "results.sqlite"
        before: dict[int, float] = {}
        deadline = time.time() + 300
        while time.time() < deadline and not before and th.is_alive():
            time.sleep(0.05)
            if ckpt.exists():  # epoch 1 is checkpointed; wait for its row
                con = sqlite3.connect(db, timeout=60)
                before = dict(con.execute("SELECT epoch, recorded_at FROM epochs").fetchall())
                con.close()
        assert before, result
        victim_pid = int(lock.read_text().strip())
        node = _node_of(cluster, victim_pid)
        assert node is not None, "cannot tell which node runs the trial"
        cluster.remove_node(node, allow_graceful=False)  # the node dies mid-training
        th.join(timeout=600)
        assert not th.is_alive() and "error" not in result, result
        assert result["counts"] == {"pending": 0, "running": 0, "done": 1, "failed": 0}

        with Store(db, readonly=True) as store:
            (t,) = store.trials()
            attempts = tuple(store.conn.execute(
                "SELECT COUNT(*), SUM(finished_at IS NULL) FROM attempts").fetchone())
        assert [e["epoch"] for e in t.epochs] == list(range(1, EPOCHS + 1))
        assert t.env["pid"] != victim_pid and t.failures == 0 and attempts == (1, 0)
        # epochs finished before the node died were not trained again (resumed from the
        # checkpoint): their rows were recorded once, before the kill
        con = sqlite3.connect(db)
        after = dict(con.execute("SELECT epoch, recorded_at FROM epochs").fetchall())
        con.close()
        assert before and all(after[e] == at for e, at in before.items())
        assert _results(db) == reference
        assert not [p for p in cfg.out_dir.rglob("*.tmp")]
        assert os.path.isfile(ckpt)
    finally:
        ray.shutdown()
        cluster.shutdown()
