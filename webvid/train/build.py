"""Moved to :mod:`webvid.model.build`; this alias keeps old imports working."""

from webvid.model.build import (
    build_model,
    data_stats,
    load_for_inference,
    model_config,
    python_model_dir,
    resolve,
)

__all__ = [
    "build_model",
    "data_stats",
    "load_for_inference",
    "model_config",
    "python_model_dir",
    "resolve",
]
