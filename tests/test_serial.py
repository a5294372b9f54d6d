"""util.serial: the one to_dict/from_dict, and the formats that must not change with it."""

from __future__ import annotations

import enum
import json
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from netscale.bench.timing import Stats
from netscale.errors import NetscaleError
from netscale.study.config import parse_study_config
from netscale.train.recipe import Recipe
from netscale.util import jsonio, serial


class Color(enum.Enum):
    RED = "red"
    BLUE = "blue"


@dataclass(frozen=True)
class Inner:
    a: int
    b: tuple[float, ...] = ()


@dataclass(frozen=True)
class Outer:
    name: str
    inner: Inner
    inners: tuple[Inner, ...] = ()
    pair: tuple[int, str] | None = None
    by_key: dict[str, Inner] = field(default_factory=dict)
    color: Color = Color.RED
    where: Path | None = None
    maybe: float | None = None


def test_round_trip_of_nested_records() -> None:
    o = Outer("x", Inner(1, (0.5, 2.0)), (Inner(2), Inner(3, (1.0,))), (4, "four"),
              {"k": Inner(5)}, Color.BLUE, Path("/tmp/p"), None)
    d = serial.to_dict(o)
    assert d == {"name": "x", "inner": {"a": 1, "b": [0.5, 2.0]},
                 "inners": [{"a": 2, "b": []}, {"a": 3, "b": [1.0]}], "pair": [4, "four"],
                 "by_key": {"k": {"a": 5, "b": []}}, "color": "blue", "where": "/tmp/p",
                 "maybe": None}
    back = serial.from_dict(Outer, json.loads(jsonio.dumps(d)))
    assert back == o


def test_strict_errors_name_the_field_in_one_line() -> None:
    with pytest.raises(NetscaleError, match=r"^cfg\.inner\.a must be an integer, got 'x'$"):
        serial.from_dict(Outer, {"name": "n", "inner": {"a": "x"}}, "cfg")
    with pytest.raises(NetscaleError, match=r"unknown field 'nme' \(did you mean 'name'\?\)"):
        serial.from_dict(Outer, {"nme": "n"}, "cfg")
    with pytest.raises(NetscaleError, match=r"^cfg must be a mapping of fields, got list$"):
        serial.from_dict(Outer, [1], "cfg")  # type: ignore[arg-type]  # the wrong type on purpose
    # an integral float is an integer; a bool is not a number
    assert serial.from_dict(Inner, {"a": 3.0}, "cfg").a == 3
    with pytest.raises(NetscaleError, match=r"^cfg\.a must be an integer, got True$"):
        serial.from_dict(Inner, {"a": True}, "cfg")


def test_unknown_keys_can_be_ignored_and_records_use_their_own_readers() -> None:
    s = Stats(median_ms=2.0, iqr_ms=0.5, q1_ms=1.75, q3_ms=2.25, min_ms=1.5, max_ms=3.0,
              samples=9)
    d = s.to_dict()
    assert d["rel_iqr"] == 0.25  # a derived key the record adds itself
    assert Stats.from_dict(d) == s
    with pytest.raises(NetscaleError, match="unknown field 'rel_iqr'"):
        serial.from_dict(Stats, d)


def test_recipe_keeps_its_format() -> None:
    r = Recipe.from_dict({"epochs": 3, "lr": 1})
    d = r.to_dict()
    assert d["epochs"] == 3 and d["lr"] == 1.0 and isinstance(d["lr"], float)
    assert Recipe.from_dict(d) == r
    with pytest.raises(NetscaleError, match=r"^recipe\.epochs must be an integer, got 'x'$"):
        Recipe.from_dict({"epochs": "x"})


# Fingerprints of study configs: a config's fingerprint is stable (a study directory written
# with it resumes), whatever the config's sections hold by default.
FINGERPRINTS = [
    ({"name": "t", "bases": ["RegNetY-200MF"], "strategies": ["d", "dWr"], "factors": [1, 2],
      "data": {"name": "digits", "subset": 300},
      "recipe": {"epochs": 1, "lr": 1, "batch_size": 32}, "bench": {"budget": 0.5},
      "base_overrides": {"resolution": 32}}, "bc7e0cf06fca7bf2"),
    ({"bases": ["ResNet-20-CIFAR"], "strategies": ["w"], "factors": [1, 4], "train": False},
     "bbba8d46d934ab8c"),
    ({"bases": ["RegNetX-200MF"], "strategies": ["r"], "factors": [2],
      "data": {"name": "fashion-mnist"}, "recipe": {}, "seeds": [0, 1]}, "caf4cf1a53276a38"),
]


@pytest.mark.parametrize("raw,fingerprint", FINGERPRINTS)
def test_study_fingerprints_are_unchanged(raw: dict, fingerprint: str, tmp_path: Path) -> None:
    cfg = parse_study_config(raw, source="x.yaml", base_dir=tmp_path)
    assert cfg.fingerprint() == fingerprint
    # the sections as written (defaults unsaid) go to study.yaml; the typed objects are used
    assert cfg.to_dict()["recipe"] == raw.get("recipe", {})
    assert cfg.recipe == Recipe.from_dict(raw.get("recipe", {}))
    assert (cfg.data is None) == (not raw.get("data"))
