"""Config dataclasses from plain dicts (YAML, key=value overrides, checkpoints), checked.

Every config class (train, sft, dpo, model, LoRA, data prepare) builds itself with
:func:`config_from_dict`, so a bad value is caught where it enters and named by its field,
instead of failing later deep inside the code that uses it:

>>> from dataclasses import dataclass
>>> @dataclass
... class Run:
...     max_iters: int = 10
>>> config_from_dict(Run, {"max_iters": "ten"}, "train config")
Traceback (most recent call last):
...
legollm.core.exceptions.ConfigError: train config: max_iters must be an int, got 'ten' (str)

The field's annotation is the schema: ``int``, ``float``, ``bool``, ``str``, ``None``,
unions (``int | None``, ``str | dict[str, Any]``), ``list[X]``, ``dict[K, V]`` and ``Any``.
Numbers are converted where nothing is lost: an int is a fine float, and an integral
float (``max_iters=1e4`` reads as 10000.0) a fine int; ``2.5`` is not an int, and a bool is
never a number. A float field also takes a numeric string, because YAML 1.1 reads
``lr: 3e-4`` (no dot) as the string "3e-4".
"""

from __future__ import annotations

import dataclasses
import functools
import math
import types
import typing
from collections.abc import Mapping
from typing import Any, TypeVar

from legollm.core.exceptions import ConfigError

T = TypeVar("T")

_NAMES = {int: "an int", float: "a number", bool: "a bool (true/false)", str: "a string"}


def config_from_dict(cls: type[T], d: Mapping[str, Any], what: str) -> T:
    """``cls(**d)`` after checking every key is a field of ``cls`` and every value has its type.

    ``what`` names the config in messages ("train config"). Raises ConfigError naming the
    field, what it must be and what it got; unknown keys are listed with the known ones.
    """
    if not isinstance(d, Mapping):
        raise ConfigError(f"{what} must be a mapping of fields, got {type(d).__name__}")
    hints = _field_types(cls)
    unknown = sorted(set(d) - set(hints), key=str)
    if unknown:
        raise ConfigError(f"unknown {what} field(s) {unknown}; known: {sorted(hints)}")
    missing = [name for name in _required_fields(cls) if name not in d]
    if missing:
        raise ConfigError(f"{what} needs {missing}")
    values = {name: check_value(value, hints[name], f"{what}: {name}") for name, value in d.items()}
    return cls(**values)


def check_value(value: Any, tp: Any, where: str) -> Any:
    """``value`` as type ``tp`` (converted only where nothing is lost), else ConfigError.

    ``where`` prefixes the message: ``"train config: max_iters"``.
    """
    ok, converted = _convert(value, tp)
    if not ok:
        raise ConfigError(f"{where} must be {describe(tp)}, got {value!r} ({type(value).__name__})")
    if isinstance(converted, _BadItem):  # an element of a list or dict is wrong: name it
        item = converted
        return check_value(item.value, item.tp, f"{where}{item.path}")
    return converted


def describe(tp: Any) -> str:
    """A type in words: ``int | None`` -> "an int or null"."""
    if tp is Any:
        return "any value"
    if tp is type(None):
        return "null"
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if _is_union(tp):
        return " or ".join(describe(a) for a in args)
    if origin is list or tp is list:
        return f"a list of {_plural(args[0])}" if args else "a list"
    if origin is dict or tp is dict:
        return "a mapping"
    if origin is typing.Literal:
        return "one of " + ", ".join(repr(a) for a in args)
    return _NAMES.get(tp, f"a {getattr(tp, '__name__', tp)}")


# ------------------------------------------------------------------------------ internals
@dataclasses.dataclass
class _BadItem:
    """An element of a container that does not fit: where it is, so the message names it."""

    path: str
    value: Any
    tp: Any


@functools.cache
def _field_types(cls: type) -> dict[str, Any]:
    """The resolved annotation of each init field (annotations are strings under
    ``from __future__ import annotations``, so they must be evaluated)."""
    hints = typing.get_type_hints(cls)
    return {f.name: hints[f.name] for f in dataclasses.fields(cls) if f.init}


def _required_fields(cls: type) -> list[str]:
    return [
        f.name
        for f in dataclasses.fields(cls)
        if f.init and f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
    ]


def _is_union(tp: Any) -> bool:
    return typing.get_origin(tp) is typing.Union or isinstance(tp, types.UnionType)


def _plural(tp: Any) -> str:
    words = {int: "ints", float: "numbers", bool: "bools", str: "strings", Any: "values"}
    return words.get(tp, describe(tp))


def _convert(value: Any, tp: Any) -> tuple[bool, Any]:
    """``(fits, value as tp)``; a container whose element does not fit returns a _BadItem."""
    if tp is Any:
        return True, value
    if tp is type(None):
        return value is None, value
    if _is_union(tp):  # the first arm that takes the value; else the arm that nearly did
        nearly = None
        for arm in typing.get_args(tp):
            ok, converted = _convert(value, arm)
            if ok and not isinstance(converted, _BadItem):
                return True, converted
            nearly = nearly or (converted if ok else None)
        return nearly is not None, nearly if nearly is not None else value
    if tp is bool:
        return isinstance(value, bool), value
    if tp is int:
        return _to_int(value)
    if tp is float:
        return _to_float(value)
    origin, args = typing.get_origin(tp) or tp, typing.get_args(tp)
    if origin is list:
        return _list(value, args[0] if args else Any)
    if origin is dict:
        return _dict(value, *(args or (Any, Any)))
    if origin is typing.Literal:
        return value in args, value
    return isinstance(value, origin), value


def _to_int(value: Any) -> tuple[bool, Any]:
    if isinstance(value, bool):
        return False, value
    if isinstance(value, int):
        return True, value
    if isinstance(value, float) and value.is_integer():
        return True, int(value)
    return False, value


def _to_float(value: Any) -> tuple[bool, Any]:
    if isinstance(value, bool):
        return False, value
    if isinstance(value, (int, float)):
        return True, float(value)
    if isinstance(value, str):
        try:
            number = float(value)
        except ValueError:
            return False, value
        return math.isfinite(number), number
    return False, value


def _list(value: Any, item_tp: Any) -> tuple[bool, Any]:
    if not isinstance(value, (list, tuple)):
        return False, value
    out = []
    for i, item in enumerate(value):
        ok, converted = _convert(item, item_tp)
        if not ok or isinstance(converted, _BadItem):
            return True, _nested(f"[{i}]", item, item_tp, converted)
        out.append(converted)
    return True, out


def _dict(value: Any, key_tp: Any, value_tp: Any) -> tuple[bool, Any]:
    if not isinstance(value, Mapping):
        return False, value
    out = {}
    for key, item in value.items():
        ok, converted_key = _convert(key, key_tp)
        if not ok:
            return True, _BadItem(f" key {key!r}", key, key_tp)
        ok, converted = _convert(item, value_tp)
        if not ok or isinstance(converted, _BadItem):
            return True, _nested(f"[{key!r}]", item, value_tp, converted)
        out[converted_key] = converted
    return True, out


def _nested(step: str, item: Any, item_tp: Any, converted: Any) -> _BadItem:
    """Where a bad element is, through nested containers: ``[0]['a']``."""
    if isinstance(converted, _BadItem):
        return _BadItem(step + converted.path, converted.value, converted.tp)
    return _BadItem(step, item, item_tp)


__all__ = ["check_value", "config_from_dict", "describe"]
