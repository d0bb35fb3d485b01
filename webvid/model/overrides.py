"""``--model KEY=VALUE`` overrides: raw strings parsed to the :class:`ModelConfig` field types.

Takes the CLI's repeatable ``--model KEY=VALUE`` strings (a list of ``KEY=VALUE`` items or a
mapping of key to raw value) and produces a ``dict`` of typed values ready for
``dataclasses.replace(config, **values)``. Keys are any :class:`ModelConfig` field; values are
parsed to the field's declared type: ``int``, ``float``, ``bool`` (``true/false/1/0/yes/no/on/
off``), ``str``, and optional ones (``none``/``null`` gives ``None``). An unknown key or a bad
value is a :class:`~webvid.errors.ConfigError` naming the key, the expected type and the valid
keys.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Iterable, Mapping
from typing import Any

from webvid.errors import ConfigError
from webvid.model.model import ModelConfig

_TRUE = frozenset({"true", "1", "yes", "on"})
_FALSE = frozenset({"false", "0", "no", "off"})
_NONE = frozenset({"none", "null"})

#: What a raw override may be: a mapping of key → value, or ``KEY=VALUE`` strings.
RawOverrides = Mapping[str, Any] | Iterable[str]


def field_types() -> dict[str, Any]:
    """Every :class:`ModelConfig` field name with its resolved type annotation."""
    hints = typing.get_type_hints(ModelConfig)
    return {f.name: hints[f.name] for f in dataclasses.fields(ModelConfig)}


def _describe(tp: Any) -> str:
    args = typing.get_args(tp)
    if args and type(None) in args:
        inner = [a for a in args if a is not type(None)]
        return " or ".join(_describe(a) for a in inner) + " or none"
    return getattr(tp, "__name__", str(tp))


def _parse_plain(key: str, raw: str, tp: Any) -> Any:
    text = raw.strip()
    if tp is bool:
        low = text.lower()
        if low in _TRUE:
            return True
        if low in _FALSE:
            return False
        raise ValueError
    if tp is int:
        return int(text)
    if tp is float:
        return float(text)
    if tp is str:
        return raw
    raise ConfigError(f"--model {key}: field type {tp!r} cannot be set from the command line")


def parse_value(key: str, raw: Any, tp: Any) -> Any:
    """``raw`` (a string, or an already-typed value) as a value of type ``tp``."""
    if not isinstance(raw, str):
        return raw
    args = typing.get_args(tp)
    optional = typing.get_origin(tp) in (typing.Union, types.UnionType) and type(None) in args
    if optional and raw.strip().lower() in _NONE:
        return None
    candidates = [a for a in args if a is not type(None)] if optional else [tp]
    for cand in candidates:
        try:
            return _parse_plain(key, raw, cand)
        except ValueError:
            continue
    raise ConfigError(f"--model {key}={raw!r}: expected {_describe(tp)}")


def split_pairs(items: Iterable[str]) -> dict[str, str]:
    """``["KEY=VALUE", ...]`` → ``{KEY: VALUE}`` (the last one wins), keys stripped."""
    out: dict[str, str] = {}
    for item in items:
        key, sep, value = str(item).partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--model {item!r}: expected KEY=VALUE, e.g. num_heads=12")
        out[key.strip()] = value
    return out


def parse_overrides(raw: RawOverrides | None) -> dict[str, Any]:
    """Typed :class:`ModelConfig` values from ``--model`` overrides (see the module docstring)."""
    if raw is None:
        return {}
    pairs = dict(raw) if isinstance(raw, Mapping) else split_pairs(raw)
    types_ = field_types()
    out: dict[str, Any] = {}
    for key, value in pairs.items():
        if key not in types_:
            raise ConfigError(
                f"--model {key}: unknown model setting; valid keys: {', '.join(sorted(types_))}"
            )
        out[key] = parse_value(key, value, types_[key])
    return out


def apply_overrides(config: ModelConfig, values: Mapping[str, Any]) -> ModelConfig:
    """``config`` with ``values`` replaced; an inconsistent result is a ConfigError."""
    try:
        return dataclasses.replace(config, **values)
    except (ValueError, TypeError) as exc:
        raise ConfigError(f"--model {dict(values)}: {exc}") from None
