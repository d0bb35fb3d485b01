"""A restricted unpickler for ``torch.load``: tensors and plain data only, never pickled code.

Takes a checkpoint file written by ``torch.save`` (zip or legacy format) and produces the
unpickled object, admitting only: tensors, parameters, storages, ``torch.Size``/dtypes/devices,
plain containers (``dict``, ``list``, ``tuple``, ``set``, ``OrderedDict``), numbers, strings,
bytes, numpy scalars/arrays/dtypes, and ``pathlib`` paths (rebuilt as *pure* paths, which touch
no file system). The official Frozen-in-Time checkpoints pickle a ``parse_config.ConfigParser``
object, a class that is not installed here; it is rebuilt as :class:`OfficialConfigStub`, a
plain attribute bag, without importing any ``parse_config`` module. Every other global — a
function, a class, anything a malicious ``__reduce__`` could name — is refused with
:class:`UnsafeCheckpointError` naming it, before anything is called.

``torch.load(weights_only=True)`` alone is not enough: it refuses the unknown config class.
"""

from __future__ import annotations

import _compat_pickle
import codecs
import collections
import os
import pathlib
import pickle
import types
from typing import Any

import torch

from webvid.errors import InputError
from webvid.numpy_pickle import numpy_globals


class UnsafeCheckpointError(InputError):
    """The checkpoint asks for a global outside the allow-list; nothing was executed."""


class OfficialConfigStub:
    """Stand-in for the official ``parse_config.ConfigParser``: its pickled state, as data.

    ``state`` holds the attributes the official object had (``_config`` — the JSON config as
    nested dicts —, ``resume``, ``_save_dir`` …); ``config`` is a shortcut to ``_config``.
    """

    pickled_as = "parse_config.ConfigParser"

    def __setstate__(self, state: Any) -> None:
        self.__dict__["state"] = state

    @property
    def config(self) -> Any:
        state = self.__dict__.get("state")
        return state.get("_config") if isinstance(state, dict) else None

    def __repr__(self) -> str:
        return f"<OfficialConfigStub of {self.pickled_as}>"


def _build_allowed() -> dict[tuple[str, str], Any]:
    import warnings

    allowed: dict[tuple[str, str], Any] = {
        ("collections", "OrderedDict"): collections.OrderedDict,
        ("builtins", "set"): set,
        ("builtins", "frozenset"): frozenset,
        ("builtins", "complex"): complex,
        ("builtins", "bytearray"): bytearray,
        ("builtins", "slice"): slice,
        ("_codecs", "encode"): codecs.encode,  # how protocol-2 pickles spell bytes
        ("torch", "Size"): torch.Size,
        ("torch", "device"): torch.device,
        ("torch", "Tensor"): torch.Tensor,
        ("torch._tensor", "Tensor"): torch.Tensor,
        ("torch.nn.parameter", "Parameter"): torch.nn.Parameter,
        ("torch._utils", "_rebuild_tensor"): torch._utils._rebuild_tensor,
        ("torch._utils", "_rebuild_tensor_v2"): torch._utils._rebuild_tensor_v2,
        ("torch._utils", "_rebuild_parameter"): torch._utils._rebuild_parameter,
        ("torch._utils", "_rebuild_parameter_with_state"): (
            torch._utils._rebuild_parameter_with_state
        ),
        ("torch._tensor", "_rebuild_from_type_v2"): torch._tensor._rebuild_from_type_v2,
        ("parse_config", "ConfigParser"): OfficialConfigStub,
    }
    for mod in ("pathlib", "pathlib._local"):
        allowed[(mod, "PosixPath")] = pathlib.PurePosixPath
        allowed[(mod, "PurePosixPath")] = pathlib.PurePosixPath
        allowed[(mod, "WindowsPath")] = pathlib.PureWindowsPath
        allowed[(mod, "PureWindowsPath")] = pathlib.PureWindowsPath
    for name in dir(torch):
        obj = getattr(torch, name, None)
        is_storage = isinstance(obj, type) and name.endswith("Storage")
        if isinstance(obj, torch.dtype) or is_storage:
            allowed[("torch", name)] = obj
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        allowed.update(numpy_globals())
    return allowed


_ALLOWED: dict[tuple[str, str], Any] | None = None


def allowed_globals() -> dict[tuple[str, str], Any]:
    """The allow-list, ``(module, name) -> object`` (built once)."""
    global _ALLOWED
    if _ALLOWED is None:
        _ALLOWED = _build_allowed()
    return _ALLOWED


class RestrictedUnpickler(pickle.Unpickler):
    """``pickle.Unpickler`` whose ``find_class`` only answers from :func:`allowed_globals`."""

    def find_class(self, module: str, name: str) -> Any:
        # Protocol < 3 pickles spell Python 2 names (``__builtin__.set``); map them as pickle does.
        if (module, name) in _compat_pickle.NAME_MAPPING:
            module, name = _compat_pickle.NAME_MAPPING[(module, name)]
        elif module in _compat_pickle.IMPORT_MAPPING:
            module = _compat_pickle.IMPORT_MAPPING[module]
        try:
            return allowed_globals()[(module, name)]
        except KeyError:
            raise UnsafeCheckpointError(
                f"refusing to unpickle the global '{module}.{name}': checkpoints may hold only "
                "tensors, plain containers and the official config object (nothing was executed)"
            ) from None


def _load(file: Any, **kwargs: Any) -> Any:
    return RestrictedUnpickler(file, **kwargs).load()


# What ``torch.load(pickle_module=...)`` needs from a pickle module.
restricted_pickle = types.ModuleType("webvid_restricted_pickle")
restricted_pickle.Unpickler = RestrictedUnpickler  # type: ignore[attr-defined]
restricted_pickle.load = _load  # type: ignore[attr-defined]
restricted_pickle.UnpicklingError = pickle.UnpicklingError  # type: ignore[attr-defined]


def safe_torch_load(path: str | os.PathLike[str], map_location: Any = "cpu") -> Any:
    """``torch.load`` through :class:`RestrictedUnpickler`; errors name the file."""
    try:
        return torch.load(
            path, map_location=map_location, pickle_module=restricted_pickle, weights_only=False
        )
    except UnsafeCheckpointError as exc:
        raise UnsafeCheckpointError(f"{path}: {exc}") from None
    except (pickle.UnpicklingError, EOFError, RuntimeError) as exc:
        if "TORCH_FORCE_WEIGHTS_ONLY_LOAD" in str(exc) or "pickle_module" in str(exc):
            raise InputError(
                f"{path}: unset TORCH_FORCE_WEIGHTS_ONLY_LOAD to load checkpoints through "
                "webvid's restricted unpickler"
            ) from None
        raise InputError(f"{path}: not a readable torch checkpoint: {exc}") from None
