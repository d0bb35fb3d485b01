"""Recipes: TOML files read into frozen dataclasses, with ``--set a.b=value`` overrides.

Takes a recipe path (or a dict) and a dataclass type; produces a validated, frozen instance.
Unknown keys and wrong types are errors that name the key and the file. ``to_dict`` and
``dump_toml`` give the resolved recipe back, for manifests and run dirs.

Supported field types: ``bool``, ``int``, ``float`` (ints accepted), ``str``, ``Path``,
``Literal[...]``, ``X | None``, ``tuple[X, ...]`` / ``list[X]`` (stored as tuples), nested
dataclasses, tuples of dataclasses (TOML arrays of tables), and ``dict[str, X]``.
"""

from __future__ import annotations

import dataclasses
import math
import tomllib
import types
import typing
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

from webvid.errors import ConfigError

T = TypeVar("T")


def load_recipe(
    cls: type[T],
    path: str | Path | None = None,
    overrides: Sequence[str] = (),
    *,
    base: Mapping[str, Any] | None = None,
) -> T:
    """Read ``path`` (TOML) into ``cls``, then apply ``overrides`` (``a.b=value`` strings)."""
    data: dict[str, Any] = dict(base or {})
    where = "defaults"
    if path is not None:
        path = Path(path)
        where = str(path)
        if not path.is_file():
            raise ConfigError(f"recipe not found: {path}")
        try:
            with open(path, "rb") as fh:
                data = _deep_merge(data, tomllib.load(fh))
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{path}: invalid TOML: {exc}") from None
    for item in overrides:
        apply_override(data, item)
    return from_dict(cls, data, where=where)


def parse_override(item: str) -> tuple[list[str], Any]:
    """``"train.lr=3e-5"`` → (["train", "lr"], 3e-05). Values are TOML literals, else strings."""
    if "=" not in item:
        raise ConfigError(f"--set expects key=value, got {item!r}")
    key, raw = item.split("=", 1)
    parts = [p.strip() for p in key.strip().split(".")]
    if not all(parts):
        raise ConfigError(f"--set: bad key {key!r}")
    raw = raw.strip()
    try:
        value = tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        value = raw  # bare words are strings: --set via=direct
    return parts, value


def apply_override(data: dict[str, Any], item: str) -> None:
    parts, value = parse_override(item)
    node = data
    for p in parts[:-1]:
        nxt = node.setdefault(p, {})
        if not isinstance(nxt, dict):
            raise ConfigError(f"--set {item!r}: {p!r} is not a table")
        node = nxt
    node[parts[-1]] = value


def _deep_merge(a: Mapping[str, Any], b: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(a)
    for k, v in b.items():
        if isinstance(v, Mapping) and isinstance(out.get(k), Mapping):
            out[k] = _deep_merge(out[k], v)
        else:
            out[k] = v
    return out


def from_dict(
    cls: type[T], data: Mapping[str, Any], *, where: str = "config", prefix: str = ""
) -> T:
    """Build dataclass ``cls`` from ``data``, checking keys and types recursively."""
    if not dataclasses.is_dataclass(cls):
        raise TypeError(f"{cls} is not a dataclass")
    if not isinstance(data, Mapping):
        raise ConfigError(f"{where}: {prefix or 'top level'} must be a table")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        known = ", ".join(sorted(fields))
        raise ConfigError(
            f"{where}: unknown key {prefix + unknown[0]!r} (known keys here: {known})"
        )
    kwargs: dict[str, Any] = {}
    for name, value in data.items():
        kwargs[name] = _coerce(hints[name], value, where, f"{prefix}{name}")
    try:
        return cls(**kwargs)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{where}: {prefix.rstrip('.') or cls.__name__}: {exc}") from None


def _coerce(tp: Any, value: Any, where: str, key: str) -> Any:
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)

    def bad(expected: str) -> ConfigError:
        return ConfigError(f"{where}: {key} must be {expected}, got {value!r}")

    if tp is Any:
        return value
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _coerce(arg, value, where, key)
            except ConfigError as exc:
                errors.append(str(exc))
        raise (
            ConfigError(errors[0]) if len(errors) == 1 else bad(" or ".join(map(_type_name, args)))
        )
    if origin is typing.Literal:
        if value not in args:
            raise bad("one of " + ", ".join(repr(a) for a in args))
        return value
    if dataclasses.is_dataclass(tp):
        return from_dict(tp, value, where=where, prefix=f"{key}.")
    if origin in (tuple, list, Sequence) or tp in (tuple, list):
        if not isinstance(value, (list, tuple)):
            raise bad("a list")
        item_tp = args[0] if args else Any
        return tuple(_coerce(item_tp, v, where, f"{key}[{i}]") for i, v in enumerate(value))
    if origin in (dict, Mapping) or tp is dict:
        if not isinstance(value, Mapping):
            raise bad("a table")
        val_tp = args[1] if len(args) == 2 else Any
        return {str(k): _coerce(val_tp, v, where, f"{key}.{k}") for k, v in value.items()}
    if tp is bool:
        if not isinstance(value, bool):
            raise bad("true or false")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise bad("an integer")
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise bad("a number")
        if math.isnan(float(value)):
            raise bad("a number (not NaN)")
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise bad("a string")
        return value
    if tp is Path:
        if not isinstance(value, str):
            raise bad("a path string")
        return Path(value)
    raise ConfigError(f"{where}: {key}: unsupported field type {tp!r}")


def _type_name(tp: Any) -> str:
    return getattr(tp, "__name__", str(tp))


def to_dict(obj: Any) -> Any:
    """A dataclass (recursively) as plain TOML/JSON-friendly data; None values are dropped."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {
            f.name: to_dict(getattr(obj, f.name))
            for f in dataclasses.fields(obj)
            if getattr(obj, f.name) is not None
        }
    if isinstance(obj, (list, tuple)):
        return [to_dict(v) for v in obj]
    if isinstance(obj, Mapping):
        return {str(k): to_dict(v) for k, v in obj.items() if v is not None}
    if isinstance(obj, Path):
        return str(obj)
    return obj


def dump_toml(data: Mapping[str, Any]) -> str:
    """Serialise plain data (from :func:`to_dict`) as TOML; round-trips through ``tomllib``."""
    lines: list[str] = []
    _dump_table(data, [], lines)
    return "\n".join(lines).lstrip("\n") + "\n"


def _is_table_array(v: Any) -> bool:
    return isinstance(v, list) and bool(v) and all(isinstance(x, Mapping) for x in v)


def _dump_table(data: Mapping[str, Any], path: list[str], lines: list[str]) -> None:
    scalars = {
        k: v for k, v in data.items() if not isinstance(v, Mapping) and not _is_table_array(v)
    }
    for k, v in scalars.items():
        lines.append(f"{_key(k)} = {_value(v)}")
    for k, v in data.items():
        if isinstance(v, Mapping):
            lines.append("")
            lines.append("[" + ".".join(_key(p) for p in [*path, k]) + "]")
            _dump_table(v, [*path, k], lines)
        elif _is_table_array(v):
            for item in v:
                lines.append("")
                lines.append("[[" + ".".join(_key(p) for p in [*path, k]) + "]]")
                _dump_table(item, [*path, k], lines)


def _key(k: str) -> str:
    return k if k.replace("_", "").replace("-", "").isalnum() else _string(k)


def _string(s: str) -> str:
    escaped = s.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n").replace("\t", "\\t")
    escaped = "".join(c if ord(c) >= 0x20 else f"\\u{ord(c):04x}" for c in escaped)
    return f'"{escaped}"'


def _value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        if math.isinf(v):
            return "inf" if v > 0 else "-inf"
        return repr(v)
    if isinstance(v, str):
        return _string(v)
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_value(x) for x in v) + "]"
    if isinstance(v, Mapping):
        return "{ " + ", ".join(f"{_key(k)} = {_value(x)}" for k, x in v.items()) + " }"
    raise ConfigError(f"cannot write {type(v).__name__} to TOML")
