"""The one recommendation engine: verdicts that know about noise.

:func:`study_verdict` (measured groups of a study at a trained factor) and
:func:`netscale.advise.recommend.recommend` (law predictions beyond the trained factors) both
rank through :func:`decide`, so the report's box, ``netscale report --json``, ``netscale
recommend`` and the quickstart agree by construction. Statistics: :mod:`netscale.laws.stats`
and docs/statistics.md.
"""

from netscale.advise.verdict import (
    Decision,
    GroupStats,
    Option,
    Verdict,
    decide,
    group_trials,
    is_smoke_test,
    study_verdict,
    verdict_for_study_dir,
)

__all__ = ["Decision", "GroupStats", "Option", "Verdict", "decide", "group_trials",
           "is_smoke_test", "study_verdict", "verdict_for_study_dir"]
