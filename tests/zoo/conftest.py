"""The zoo tests run in the environment with timm and torchvision (``./test.sh`` creates
``.venv-zoo`` and runs them there). Without them these tests fail: they are never skipped."""

from __future__ import annotations

import timm  # noqa: F401  (a missing zoo is an error here, not a skip)
import torchvision  # noqa: F401
