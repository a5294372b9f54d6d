"""`netscale train` and `netscale eval`: train any spec on a dataset, evaluate a checkpoint."""

from __future__ import annotations

import argparse
import os
import re
import sys
from pathlib import Path
from typing import Any

from netscale.cli.common import (
    nonneg_float,
    nonneg_int,
    positive_float,
    positive_int,
    print_json,
    seed_int,
    threads_int,
)
from netscale.errors import NetscaleError


def add_parser(sub: Any) -> None:
    _add_train_parser(sub)
    _add_eval_parser(sub)


def _add_train_parser(sub: Any) -> None:
    p = sub.add_parser(
        "train",
        help="train a model or spec on a dataset (resumable; DDP under torchrun)",
        description="Train MODEL_OR_SPEC on a dataset with the default recipe (SGD + Nesterov, "
        "warm-up then cosine, label smoothing 0.1, no weight decay on BN/biases). The spec's "
        "num_classes and in_channels are set from the dataset. Checkpoints every epoch to "
        "--out; --resume continues exactly. Multi-process: torchrun --nproc_per_node N -m "
        "netscale train ...",
    )
    p.add_argument("model", nargs="?", metavar="MODEL_OR_SPEC",
                   help="named model or spec file (optional with --resume --out RUN_DIR)")
    p.add_argument("--data", metavar="NAME_OR_PATH",
                   help="fashion-mnist, mnist, cifar10, cifar100, digits, or a folder (IDX "
                   "files, CIFAR python batches, ImageFolder tree)")
    p.add_argument("--epochs", type=positive_int, help="epochs (default 10)")
    p.add_argument("--batch-size", type=positive_int,
                   help="global batch size (default: from the dataset size, the largest power "
                   "of two <= 128 giving >= 50 steps an epoch; split across processes)")
    p.add_argument("--lr", type=positive_float, help="learning rate at the reference batch "
                   "(default 0.1 at 128; scaled with --batch-size: linearly for SGD, by the "
                   "square root for AdamW)")
    p.add_argument("--optimizer", choices=("sgd", "adamw"),
                   help="sgd (Nesterov momentum, default) or adamw")
    p.add_argument("--ref-batch", type=positive_int, help="reference batch of --lr (default 128)")
    p.add_argument("--no-lr-scaling", action="store_true",
                   help="use --lr as given, whatever the batch size")
    p.add_argument("--weight-decay", type=nonneg_float, help="default 5e-5 (not on BN/biases)")
    p.add_argument("--warmup-epochs", type=nonneg_float,
                   help="linear warm-up (default: 1 epoch, at most 10%% of the run)")
    p.add_argument("--label-smoothing", type=nonneg_float, help="default 0.1")
    p.add_argument("--momentum", type=nonneg_float,
                   help="Nesterov momentum / AdamW beta1 (default 0.9)")
    p.add_argument("--ema", action="store_true", help="keep an EMA of the weights and evaluate it")
    p.add_argument("--ema-decay", type=positive_float, help="EMA decay per step (default 0.999)")
    p.add_argument("--memory-format", choices=("auto", "channels_last", "contiguous"),
                   help="activation/weight layout: auto (default: probe both on this model, "
                   "batch and device and take the faster), channels_last (NHWC) or "
                   "contiguous (NCHW)")
    p.add_argument("--precision", choices=("auto", "fp32", "bf16", "fp16"),
                   help="auto (default: probe fp32 and, where the CPU/GPU runs it natively, "
                   "bf16 autocast with fp32 master weights; fp16 AMP on CUDA), fp32 "
                   "(bit-reproducible), bf16, or fp16 (CUDA only)")
    p.add_argument("--seed", type=seed_int, help="random seed (default 0)")
    p.add_argument("--threads", type=threads_int, help="torch CPU threads per process")
    p.add_argument("--out", metavar="DIR", help="run directory (default runs/<model>-<data>)")
    p.add_argument("--resume", action="store_true",
                   help="continue the run in --out from its last checkpoint, with the settings "
                   "stored in it (flags that contradict them are refused; a larger --epochs "
                   "extends the run)")
    p.add_argument("--max-epochs", type=positive_int, metavar="E",
                   help="stop once E epochs are done (continue later with --resume)")
    p.add_argument("--device", default="auto", help="cpu, cuda, cuda:N or auto (default)")
    _add_train_data_flags(p)


def _add_train_data_flags(p: Any) -> None:
    """``netscale train``'s dataset flags, then its output flags."""
    p.add_argument("--subset", type=positive_int, metavar="N",
                   help="train on a seeded random N images")
    p.add_argument("--val-subset", type=positive_int, metavar="N",
                   help="validate on a seeded random N images")
    p.add_argument("--val-fraction", type=positive_float,
                   help="held-out share for sets without a val split (default 0.1)")
    p.add_argument("--resolution", type=positive_int, metavar="PX",
                   help="input resolution (sets the spec's resolution; default: the spec's)")
    p.add_argument("--channels", type=int, choices=(1, 3),
                   help="input channels (default: the dataset's; greyscale repeated for 3)")
    p.add_argument("--augment", choices=("auto", "crop", "rrc", "none"),
                   help="auto (default): pad-and-crop for small sets, random-resized-crop for "
                   "ImageFolder trees")
    flip = p.add_mutually_exclusive_group()
    flip.add_argument("--flip", dest="flip", action="store_true", default=None,
                      help="random horizontal flips (default: on, except digit sets)")
    flip.add_argument("--no-flip", dest="flip", action="store_false")
    p.add_argument("--workers", type=nonneg_int, help="image decoding processes (ImageFolder)")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.add_argument("--quiet", "-q", action="store_true", help="no progress on stderr")
    p.set_defaults(func=run_train)


def _add_eval_parser(sub: Any) -> None:
    e = sub.add_parser(
        "eval",
        help="evaluate a checkpoint: top-1/top-5 error and loss",
        description="Evaluate a checkpoint (a run directory or .pt file) on a dataset split "
        "with the test-time transform (resize + centre crop). Loss is plain cross-entropy.",
    )
    e.add_argument("checkpoint", metavar="CHECKPOINT", help="run directory or checkpoint.pt")
    e.add_argument("--data", metavar="NAME_OR_PATH",
                   help="dataset (default: the one the checkpoint was trained on)")
    e.add_argument("--model", metavar="MODEL_OR_SPEC",
                   help="check that the checkpoint is this spec")
    e.add_argument("--split", choices=("val", "train"), default="val")
    e.add_argument("--batch-size", type=positive_int, default=256)
    e.add_argument("--device", default="auto", help="cpu, cuda, cuda:N or auto (default)")
    e.add_argument("--weights", choices=("auto", "ema", "raw"), default="auto",
                   help="auto: EMA weights if the checkpoint has them")
    e.add_argument("--resolution", type=positive_int, metavar="PX",
                   help="evaluate at another resolution")
    e.add_argument("--val-subset", type=positive_int, metavar="N")
    e.add_argument("--threads", type=threads_int)
    e.add_argument("--json", action="store_true", help="print the result as JSON")
    e.set_defaults(func=run_eval)


# ----------------------------------------------------------------------------- train


def _data_config(args: argparse.Namespace) -> Any:
    from netscale.data import DataConfig

    kw: dict[str, Any] = {"name": args.data}
    for key in ("subset", "val_subset", "val_fraction", "augment", "flip", "workers",
                "channels"):
        v = getattr(args, key, None)
        if v is not None:
            kw[key] = v
    return DataConfig(**kw)


def _recipe(args: argparse.Namespace) -> Any:
    from netscale.train import Recipe

    kw: dict[str, Any] = {}
    for arg, key in (("epochs", "epochs"), ("batch_size", "batch_size"), ("lr", "lr"),
                     ("ref_batch", "ref_batch"), ("weight_decay", "weight_decay"),
                     ("warmup_epochs", "warmup_epochs"),
                     ("label_smoothing", "label_smoothing"), ("momentum", "momentum"),
                     ("ema_decay", "ema_decay"), ("seed", "seed"), ("threads", "threads"),
                     ("optimizer", "optimizer"), ("memory_format", "memory_format"),
                     ("precision", "precision")):
        v = getattr(args, arg)
        if v is not None:
            kw[key] = v
    if args.no_lr_scaling:
        kw["scale_lr"] = False
    if args.ema:
        kw["ema"] = True
    return Recipe(**kw)


def adapt_spec(spec: Any, info: Any, *, resolution: int | None = None,
               channels: int | None = None) -> tuple[Any, list[str]]:
    """The spec with num_classes / in_channels (and resolution if given) set for the data;
    returns (spec, list of 'field old -> new' changes)."""
    changes: dict[str, Any] = {}
    if spec.num_classes != info.num_classes:
        changes["num_classes"] = info.num_classes
    want_ch = channels or info.in_channels
    if spec.in_channels != want_ch:
        changes["in_channels"] = want_ch
    if resolution and spec.resolution != resolution:
        changes["resolution"] = resolution
    notes = [f"{k} {getattr(spec, k)} -> {v}" for k, v in changes.items()]
    return (spec.replace(**changes).validate() if changes else spec), notes


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("_") or "run"


def _rank() -> int:
    return int(os.environ.get("RANK", "0"))


# On resume, --threads, --workers, --device, --max-epochs, --quiet and --json may change
# freely (they do not change what is trained); every other flag must agree with the run.
_RECIPE_FLAGS = (("epochs", "epochs"), ("batch_size", "batch_size"), ("lr", "lr"),
                 ("ref_batch", "ref_batch"), ("weight_decay", "weight_decay"),
                 ("warmup_epochs", "warmup_epochs"), ("label_smoothing", "label_smoothing"),
                 ("momentum", "momentum"), ("ema_decay", "ema_decay"), ("seed", "seed"),
                 ("optimizer", "optimizer"))
_DATA_FLAGS = ("subset", "val_subset", "val_fraction", "augment", "flip", "channels")


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def _refuse(given: str, stored: str, out: Path) -> NetscaleError:
    return NetscaleError(
        f"{given} contradicts the run in {out} (trained with {stored}); drop the flag "
        "to resume with the stored settings, or train into a new --out")


def resume_settings(args: argparse.Namespace, out: Path) -> tuple[Any, Any, Any, list[str]]:
    """(spec, data config, recipe, notes) stored in the checkpoint of ``out``, after checking
    every flag given on the command line against them: a contradicting flag is refused (one
    line naming it); ``--epochs`` larger than the stored value extends the run."""
    from netscale.data import DataConfig
    from netscale.specs import NetSpec
    from netscale.train import Recipe, load_checkpoint
    from netscale.train.checkpoint import spec_identity

    ck = load_checkpoint(out)
    spec = NetSpec.from_dict(ck["spec"], source=f"checkpoint in {out}")
    data = DataConfig.from_dict(ck["data"])
    recipe = Recipe.from_dict(ck["recipe"])
    done = int(ck.get("epoch", 0))
    if args.data is not None and args.data not in (data.name, data.path):
        raise _refuse(f"--data {args.data}", f"--data {data.name or data.path}", out)
    for key in _DATA_FLAGS:
        given = getattr(args, key, None)
        if given is not None and given != getattr(data, key):
            if key == "flip":
                raise _refuse("--flip" if given else "--no-flip",
                              "--no-flip" if given else "--flip", out)
            raise _refuse(f"{_flag(key)} {given}", f"{_flag(key)} {getattr(data, key)}", out)
    changes, notes = _recipe_changes(args, recipe, out, done)
    if args.threads is not None:
        changes["threads"] = args.threads
    recorded = ck.get("setting") or {}
    for key in ("memory_format", "precision"):  # the setting the run was trained in
        given = getattr(args, key)
        if given is None:
            continue
        if given != "auto" and key in recorded and given != recorded[key]:
            raise _refuse(f"{_flag(key)} {given}", f"{_flag(key)} {recorded[key]}", out)
        changes[key] = given
    if args.resolution is not None and args.resolution != spec.resolution:
        raise _refuse(f"--resolution {args.resolution}", f"--resolution {spec.resolution}",
                      out)
    if args.model is not None:
        from netscale.specs import resolve_spec

        given_spec = resolve_spec(args.model).replace(
            num_classes=spec.num_classes, in_channels=spec.in_channels,
            resolution=spec.resolution)
        if spec_identity(given_spec.to_dict()) != spec_identity(spec.to_dict()):
            raise NetscaleError(
                f"MODEL_OR_SPEC {args.model} is a different network from the one trained in "
                f"{out} ({spec.name}); resume without it (or with the same spec), or train into a "
                "new --out")
    if args.workers is not None:
        data = data.replace(workers=args.workers)
    return spec, data, recipe.replace(**changes) if changes else recipe, notes


def _recipe_changes(args: argparse.Namespace, recipe: Any, out: Path, done: int
                    ) -> tuple[dict[str, Any], list[str]]:
    """The recipe changes the resume flags ask for (only a longer --epochs), and notes; a flag
    contradicting the stored recipe is refused."""
    notes: list[str] = []
    changes: dict[str, Any] = {}
    for arg, key in _RECIPE_FLAGS:
        given = getattr(args, arg)
        stored = getattr(recipe, key)
        if given is None or given == stored:
            continue
        if key == "epochs" and given > stored:
            changes["epochs"] = given
            notes.append(f"extending the run from {stored} to {given} epochs (the cosine "
                         "schedule is stretched to the new length from the current step)")
            continue
        if key == "epochs":
            raise NetscaleError(
                f"--epochs {given} is fewer than the run's {stored} epochs ({done} done) in "
                f"{out}; resume without --epochs, or give more epochs to extend the run")
        raise _refuse(f"{_flag(arg)} {given}", f"{_flag(arg)} {stored}", out)
    for flag, key, value in (("--no-lr-scaling", "scale_lr", False), ("--ema", "ema", True)):
        if getattr(args, flag[2:].replace("-", "_")) and getattr(recipe, key) != value:
            raise _refuse(flag, f"{key} {getattr(recipe, key)}", out)
    return changes, notes


def run_train(args: argparse.Namespace) -> int:
    from netscale.train import train
    from netscale.util.device import check_device
    from netscale.util.validate import check_output_dir

    check_device(args.device)
    if args.out is not None:
        check_output_dir(args.out)
    if args.val_fraction is not None and not args.val_fraction < 1:
        raise NetscaleError(f"--val-fraction must be below 1, got {args.val_fraction:g}")
    _check_setting_flags(args)
    main = _rank() == 0
    say = (lambda text: print(text, file=sys.stderr)) if main and not args.quiet else \
        (lambda text: None)
    spec, data, recipe, ds = _settings(args, say)
    info = ds.info
    out = Path(args.out) if args.out else Path("runs") / _slug(f"{spec.name}-{info.name}")
    if args.resume and not args.out:  # the default run directory must hold the run too
        from netscale.train.checkpoint import CHECKPOINT_NAME
        from netscale.train.resume_check import check_resume_dir

        check_resume_dir(out, CHECKPOINT_NAME)  # never a fresh run in its place
    check_output_dir(out)
    result = train(spec, data, recipe, out, resume=args.resume, device=args.device,
                   max_epochs=args.max_epochs, quiet=args.quiet, dataset=ds)
    if result.status == "diverged":
        raise NetscaleError(result.message)
    if not main:
        return 0
    if args.json:
        print_json(result.to_dict())
        return 0
    _print_result(result, spec.name, info.name, out)
    return 0


def _check_setting_flags(args: argparse.Namespace) -> None:
    """--precision fp16 / bf16 where this device cannot run it: one line naming the flag."""
    if args.precision in (None, "auto", "fp32"):
        return
    from netscale.bench.setting import check_precision
    from netscale.util.device import resolve_device

    check_precision(args.precision, resolve_device(args.device), "--precision")


def _settings(args: argparse.Namespace, say: Any) -> tuple[Any, Any, Any, Any]:
    """(spec, data config, recipe, dataset): stored in the run for --resume, else from the
    flags, adapted to the dataset."""
    from netscale.data import load_dataset
    from netscale.specs import resolve_spec
    from netscale.train.checkpoint import checkpoint_path

    if args.resume and args.out:
        from netscale.train.checkpoint import CHECKPOINT_NAME
        from netscale.train.resume_check import check_resume_dir

        check_resume_dir(args.out, CHECKPOINT_NAME)  # never a fresh run in its place
    if args.resume and args.out and checkpoint_path(Path(args.out)).is_file():
        spec, data, recipe, resume_notes = resume_settings(args, Path(args.out))
        ds = load_dataset(data)
        for n in resume_notes:
            say(f"note: {n}")
        say(f"note: resuming {spec.name} on {ds.info.name} from {args.out} with its stored "
            f"settings ({recipe.epochs} epochs, batch {recipe.batch_size}, lr {recipe.lr:g})")
        return spec, data, recipe, ds
    if args.model is None or args.data is None:
        missing = " and ".join(x for x, v in (("MODEL_OR_SPEC", args.model),
                                                ("--data", args.data)) if v is None)
        hint = (f"; {args.out} holds no checkpoint to resume" if args.resume and args.out
                else "; or continue a run with --resume --out RUN_DIR" if not args.resume
                else "; --resume needs --out RUN_DIR (the run to continue)")
        raise NetscaleError(f"give {missing} (e.g. netscale train RegNetY-200MF --data "
                            f"fashion-mnist){hint}")
    data = _data_config(args)
    recipe = _recipe(args)
    ds = load_dataset(data)
    info = ds.info
    spec, notes = adapt_spec(resolve_spec(args.model), info, resolution=args.resolution,
                             channels=args.channels)
    if notes:
        say(f"note: adapted {spec.name} to {info.name}: {', '.join(notes)}")
    recipe, recipe_notes = recipe.for_dataset(info.train_size,
                                              int(os.environ.get("WORLD_SIZE", "1")))
    for text in recipe_notes:
        say(f"note: {text}")
    if info.image_size and not args.resolution and spec.resolution > 4 * max(info.image_size):
        say(f"note: training at the spec's {spec.resolution} px on {info.image_size[0]}x"
            f"{info.image_size[1]} images (upsampled); pass --resolution PX to train smaller")
    return spec, data, recipe, ds


def _print_result(result: Any, spec_name: str, data_name: str, out: Path) -> None:
    from netscale.util.fmt import duration

    if result.top1_err is None:
        print(f"{out}: nothing trained")
        return
    state = ("completed" if result.status == "completed" else
             f"stopped after epoch {result.epochs_done} of {result.epochs}; continue with "
             "--resume")
    print(f"{spec_name} on {data_name}: {result.epochs_done} epochs in "
          f"{duration(result.wall_time)} ({state})")
    print(f"  val top-1 err {result.top1_err:.2%}  top-5 err {result.top5_err:.2%}  "
          f"loss {result.loss:.4f}  (best top-1 err {result.best_top1_err:.2%} at epoch "
          f"{result.best_epoch})")
    setting = result.setting or {}
    label = f"{setting.get('memory_format', 'contiguous')}+{setting.get('precision', 'fp32')}"
    print(f"  {result.images_per_sec:,.0f} img/s train in {label}, lr {result.lr:g} at batch "
          f"{result.batch_size}, {result.params:,} params")
    print(f"  run directory {out}: checkpoint.pt, log.jsonl, result.json, spec.yaml")


# ----------------------------------------------------------------------------- eval


def run_eval(args: argparse.Namespace) -> int:
    import torch

    from netscale.data import DataConfig
    from netscale.train import evaluate, load_checkpoint
    from netscale.util.device import check_device

    check_device(args.device)
    if args.val_subset and args.split == "train":
        raise NetscaleError("--val-subset applies to the val split; with --split train it "
                            "would be ignored: leave it out (or use --split val)")
    if args.threads:
        torch.set_num_threads(args.threads)
    ck = load_checkpoint(args.checkpoint)
    stored = dict(ck.get("data") or {})
    if args.data and args.data not in (stored.get("name"), stored.get("path")):
        # Another dataset: keep the pipeline options, not the subsets of the old one.
        keep = {k: v for k, v in stored.items()
                if k not in ("name", "path", "subset", "val_subset")}
        data = DataConfig.from_dict({**keep, "name": args.data})
    elif stored:
        data = DataConfig.from_dict(stored)
    else:
        raise NetscaleError("the checkpoint records no dataset; pass --data NAME_OR_PATH")
    if args.val_subset:
        data = data.replace(val_subset=args.val_subset)
    spec = None
    if args.model:
        from netscale.data import describe
        from netscale.specs import resolve_spec

        spec, _ = adapt_spec(resolve_spec(args.model), describe(data))
        spec = spec.replace(resolution=ck["spec"].get("resolution", spec.resolution))
    _check_eval_memory(ck, data, args)
    r = evaluate(ck["path"], data, spec=spec, split=args.split, batch_size=args.batch_size,
                 device=args.device, weights=args.weights, resolution=args.resolution)
    if args.json:
        print_json(r.to_dict())
        return 0
    print(f"{r.spec_name} (epoch {r.epoch}, {r.weights} weights) on {r.dataset} {r.split} "
          f"({r.images:,} images, {r.resolution} px):")
    print(f"  top-1 err {r.top1_err:.2%}  top-5 err {r.top5_err:.2%}  loss {r.loss:.4f}  "
          f"({r.images_per_sec:,.0f} img/s)")
    return 0


def _check_eval_memory(ck: Any, data: Any, args: argparse.Namespace) -> None:
    """Refuses (one line, before any allocation) an evaluation whose batch at its resolution
    cannot fit in memory (a batch holds at most the split's images)."""
    from netscale.complexity.limits import check_fits_memory
    from netscale.data import describe
    from netscale.specs import NetSpec

    info = describe(data)
    images = info.val_size if args.split == "val" else info.train_size
    batch = min(args.batch_size, images) if images else args.batch_size
    spec = NetSpec.from_dict(ck["spec"], source=f"checkpoint {ck['path']}")
    check_fits_memory(spec, max(batch, 1), train=False, what=f"evaluating {spec.name}",
                      device=args.device, resolution=args.resolution,
                      hint="lower --batch-size or --resolution")
