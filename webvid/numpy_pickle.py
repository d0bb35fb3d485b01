"""The numpy globals a restricted unpickler may answer: dtypes, arrays and scalars, rebuilt.

Takes nothing; produces ``{(module, name): object}`` for ``pickle.Unpickler.find_class``
allow-lists, under both spellings numpy pickles use (``numpy.core`` from numpy 1.x,
``numpy._core`` from 2.x), protocol-5 ``_frombuffer`` included. Shared by the checkpoint
unpickler (:mod:`webvid.model.safe_pickle`) and the annotation unpickler
(:mod:`webvid.benchmarks.annotations`); none of these objects runs code of the pickle's choosing.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np


def numpy_globals() -> dict[tuple[str, str], Any]:
    """The allowed numpy globals (see the module docstring)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # numpy 2 deprecates the numpy.core spelling
        try:
            from numpy._core import multiarray, numeric  # numpy >= 2
        except ImportError:  # numpy 1.x
            from numpy.core import multiarray, numeric  # type: ignore[no-redef]
    out: dict[tuple[str, str], Any] = {
        ("numpy", "dtype"): np.dtype,
        ("numpy", "ndarray"): np.ndarray,
    }
    for pkg in ("numpy.core", "numpy._core"):
        out[(f"{pkg}.multiarray", "scalar")] = multiarray.scalar
        out[(f"{pkg}.multiarray", "_reconstruct")] = multiarray._reconstruct
        out[(f"{pkg}.numeric", "_frombuffer")] = numeric._frombuffer  # protocol-5 arrays
    for name in dir(np.dtypes) if hasattr(np, "dtypes") else ():
        obj = getattr(np.dtypes, name)
        if isinstance(obj, type) and issubclass(obj, np.dtype):
            out[("numpy.dtypes", name)] = obj
    return out
