"""Learning-rate rules when the batch size changes (e.g. a scaled model needs a smaller batch).

* SGD-type optimisers (``sgd``, ``momentum``, ``nesterov``, ``lars``): **linear scaling**,
  lr = base_lr · B / B_ref (Goyal et al. 2017, "Accurate, Large Minibatch SGD"). Use a warm-up
  when B grows a lot.
* Adam-type optimisers (``adam``, ``adamw``, ``adamax``, ``nadam``, ``radam``, ``lamb``,
  ``rmsprop``): **square-root scaling**, lr = base_lr · sqrt(B / B_ref) (keeps the update
  noise constant for adaptive methods; Malladi et al. 2022, "On the SDEs and Scaling Rules
  for Adaptive Gradient Algorithms").

Both rules are heuristics for moderate changes of batch size (up to ~8x); very large batches
need tuning.
"""

from __future__ import annotations

import math

from netscale.errors import NetscaleError

LINEAR_OPTIMIZERS = ("sgd", "momentum", "nesterov", "lars")
SQRT_OPTIMIZERS = ("adam", "adamw", "adamax", "nadam", "radam", "lamb", "rmsprop")
RULES = ("linear", "sqrt", "none")


def lr_rule(optimizer: str) -> str:
    """``linear`` for SGD-type optimisers, ``sqrt`` for Adam-type ones."""
    name = str(optimizer).strip().lower().replace("-", "").replace("_", "")
    if name in LINEAR_OPTIMIZERS:
        return "linear"
    if name in SQRT_OPTIMIZERS:
        return "sqrt"
    raise NetscaleError(
        f"no learning-rate scaling rule for optimizer {optimizer!r}; known: "
        f"{', '.join(LINEAR_OPTIMIZERS)} (linear), {', '.join(SQRT_OPTIMIZERS)} (square root); "
        "or pass rule='linear'|'sqrt'|'none'")


def scaled_lr(base_lr: float, batch_size: int, ref_batch_size: int, optimizer: str = "sgd",
              *, rule: str | None = None) -> float:
    """The learning rate for ``batch_size`` given ``base_lr`` tuned at ``ref_batch_size``.

    ``rule`` overrides the optimizer's default (``linear``, ``sqrt`` or ``none``).
    Example: base 0.1 at batch 256, batch 1024: SGD 0.4, AdamW 0.2.
    """
    lr = float(base_lr)
    if not math.isfinite(lr) or lr <= 0:
        raise NetscaleError(f"base learning rate must be a positive number, got {base_lr!r}")
    for what, v in (("batch size", batch_size), ("reference batch size", ref_batch_size)):
        if isinstance(v, bool) or int(v) != v or v < 1:
            raise NetscaleError(f"{what} must be a whole number >= 1, got {v!r}")
    if rule is None:
        rule = lr_rule(optimizer)
    elif rule not in RULES:
        raise NetscaleError(f"unknown learning-rate rule {rule!r}; use one of {', '.join(RULES)}")
    ratio = int(batch_size) / int(ref_batch_size)
    if rule == "linear":
        return lr * ratio
    if rule == "sqrt":
        return lr * math.sqrt(ratio)
    return lr
