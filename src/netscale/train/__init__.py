"""Training and evaluation: :func:`train`, :func:`evaluate` and their typed configs/results.

``train(spec, DataConfig, Recipe, out_dir, resume=True, device="cpu", on_epoch=None,
max_epochs=None)`` trains with the default recipe (SGD + Nesterov, warm-up + cosine, label
smoothing, no weight decay on BN/biases, optional EMA) in the execution setting of
``recipe.memory_format`` x ``recipe.precision`` (``auto``: probed, the fastest; recorded),
checkpoints atomically every epoch, resumes exactly and runs data-parallel under ``torchrun``.
"""

from netscale.data.config import DataConfig
from netscale.train.checkpoint import CHECKPOINT_NAME, load_checkpoint, save_checkpoint
from netscale.train.evaluation import evaluate
from netscale.train.lr_rules import scaled_lr
from netscale.train.optim import param_groups
from netscale.train.recipe import Recipe, WarmupCosine
from netscale.train.results import EpochMetrics, EvalResult, TrainResult
from netscale.train.trainer import train

__all__ = [
    "CHECKPOINT_NAME",
    "DataConfig",
    "EpochMetrics",
    "EvalResult",
    "Recipe",
    "TrainResult",
    "WarmupCosine",
    "evaluate",
    "load_checkpoint",
    "param_groups",
    "save_checkpoint",
    "scaled_lr",
    "train",
]
