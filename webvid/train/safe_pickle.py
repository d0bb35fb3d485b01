"""Moved to :mod:`webvid.model.safe_pickle`; this alias keeps old imports working."""

from webvid.model.safe_pickle import (
    OfficialConfigStub,
    RestrictedUnpickler,
    UnsafeCheckpointError,
    allowed_globals,
    restricted_pickle,
    safe_torch_load,
)

__all__ = [
    "OfficialConfigStub",
    "RestrictedUnpickler",
    "UnsafeCheckpointError",
    "allowed_globals",
    "restricted_pickle",
    "safe_torch_load",
]
