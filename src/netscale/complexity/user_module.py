"""Load a user's model from ``path/to/file.py:factory`` or ``package.module:factory``."""

from __future__ import annotations

import importlib
import importlib.util
import os
import sys
from pathlib import Path
from typing import Any

from torch import nn

from netscale.errors import NetscaleError


def load_factory_model(target: str) -> nn.Module:
    """Imports ``target`` (``FILE.py:NAME`` or ``pkg.mod:NAME``) and returns ``NAME()``.

    ``NAME`` may be a factory function, an ``nn.Module`` class, or an ``nn.Module`` instance.
    """
    factory = load_factory(target)
    if isinstance(factory, nn.Module):
        return factory
    attr = target.rpartition(":")[2]
    try:
        model = factory()
    except Exception as exc:
        raise NetscaleError(
            f"--module: factory {attr!r} raised {type(exc).__name__}: {exc}"
        ) from None
    if not isinstance(model, nn.Module):
        raise NetscaleError(
            f"--module: factory {attr!r} returned {type(model).__name__}, not a torch.nn.Module"
        )
    return model


def load_factory(target: str) -> Any:
    """Imports ``target`` (``FILE.py:NAME`` or ``pkg.mod:NAME``) and returns ``NAME`` itself
    (a callable or an ``nn.Module`` instance), with one-line errors."""
    if ":" not in target:
        raise NetscaleError(
            f"--module {target!r} must be PATH.py:FACTORY or package.module:FACTORY "
            "(e.g. mymodels.py:make_model)"
        )
    where, _, attr = target.rpartition(":")
    if not where or not attr:
        raise NetscaleError(
            f"--module {target!r} must be PATH.py:FACTORY or package.module:FACTORY"
        )
    path = Path(where)
    if where.endswith(".py") or path.exists():
        module = _import_file(path, where)
    else:
        module = _import_module(where)
    if not hasattr(module, attr):
        public = sorted(n for n in vars(module)
                        if not n.startswith("_") and callable(getattr(module, n)))
        hint = f"; callables there: {', '.join(public[:8])}" if public else ""
        raise NetscaleError(f"--module: {where!r} has no attribute {attr!r}{hint}")
    factory = getattr(module, attr)
    if not isinstance(factory, nn.Module) and not callable(factory):
        raise NetscaleError(f"--module: {attr!r} in {where!r} is not callable")
    return factory


def _import_file(path: Path, where: str) -> Any:
    """Imports a Python file as a fresh module (its directory on the path while it runs)."""
    if not path.is_file():
        raise NetscaleError(f"--module: file {where!r} does not exist")
    mod_name = f"_netscale_user_{abs(hash(str(path.resolve())))}"
    spec = importlib.util.spec_from_file_location(mod_name, path)
    if spec is None or spec.loader is None:
        raise NetscaleError(f"--module: cannot import {where!r} as Python")
    module = importlib.util.module_from_spec(spec)
    sys.modules[mod_name] = module
    sys.path.insert(0, str(path.resolve().parent))
    try:
        spec.loader.exec_module(module)
    except Exception as exc:
        raise NetscaleError(
            f"--module: importing {where!r} failed: {type(exc).__name__}: {exc}"
        ) from None
    finally:
        sys.path.pop(0)
    return module


def _import_module(where: str) -> Any:
    """Imports ``package.module`` as ``python -m`` does: the current directory comes first
    on the import path (the ``netscale`` console script would otherwise put only its bin
    directory there)."""
    cwd = os.getcwd()
    added = cwd not in sys.path and "" not in sys.path
    if added:
        sys.path.insert(0, cwd)
    try:
        return importlib.import_module(where)
    except ModuleNotFoundError as exc:
        raise NetscaleError(
            f"--module: cannot import module {where!r} ({exc}) from the current directory "
            f"{os.getcwd()!r} or PYTHONPATH; run from the directory that holds it or give "
            "a file path"
        ) from None
    except Exception as exc:
        raise NetscaleError(
            f"--module: importing {where!r} failed: {type(exc).__name__}: {exc}"
        ) from None
    finally:
        if added and cwd in sys.path:
            sys.path.remove(cwd)
