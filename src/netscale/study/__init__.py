"""Scaling studies: config, results store, executors (local, Ray), driver, quickstart."""

from netscale.study.config import StudyConfig, load_study_config, parse_study_config
from netscale.study.planning import plan_trials
from netscale.study.runner import run_study
from netscale.study.store import Store, TrialRow

__all__ = [
    "Store",
    "StudyConfig",
    "TrialRow",
    "load_study_config",
    "parse_study_config",
    "plan_trials",
    "run_study",
]
