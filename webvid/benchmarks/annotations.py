"""Reading the community's annotation files without trusting them.

Takes a file path; produces plain Python data. The benchmark datasets are distributed as
archives of list files, JSON/CSV tables and *pickles* (``raw-captions.pkl``,
``jsfusion_val_caption_idx.pkl``) that anyone can re-host, so a pickle here is hostile input:
:func:`load_annotation_pickle` unpickles with a ``find_class`` that answers only the globals
those files need — plain containers (``set``, ``frozenset``, ``collections.OrderedDict`` /
``defaultdict`` with a builtin container factory), numbers and strings, and numpy scalars,
arrays and dtypes (``numpy.core`` and ``numpy._core`` spellings) — and refuses every other
global (``os.system``, ``builtins.eval``, ``subprocess.Popen``, any class) with an
:class:`~webvid.errors.InputError` naming the file and the global, before anything is called.
pandas objects are refused too: none of the community files holds one. Files over
:data:`MAX_PICKLE_BYTES` are refused unread.

The other readers (:func:`read_list`, :func:`read_json`, :func:`read_csv_rows`) turn a missing
or malformed file into an InputError naming it.
"""

from __future__ import annotations

import _compat_pickle
import codecs
import collections
import csv
import io
import json
import pickle
from pathlib import Path
from typing import Any

import numpy as np

from webvid.errors import InputError
from webvid.numpy_pickle import numpy_globals

#: the largest annotation pickle read (MSR-VTT's raw-captions.pkl is a few MB)
MAX_PICKLE_BYTES = 256 * 1024 * 1024
#: the largest JSON / CSV / list file read (MSR-VTT's MSR_VTT.json is ~30 MB)
MAX_TEXT_BYTES = 512 * 1024 * 1024


def _allowed() -> dict[tuple[str, str], Any]:
    out: dict[tuple[str, str], Any] = {
        ("collections", "OrderedDict"): collections.OrderedDict,
        ("collections", "defaultdict"): collections.defaultdict,
        ("_codecs", "encode"): codecs.encode,  # how protocol-2 pickles spell bytes
    }
    for typ in (list, dict, tuple, set, frozenset, str, int, float, bool, bytes, bytearray):
        out[("builtins", typ.__name__)] = typ  # containers and scalars (defaultdict factories)
    out[("builtins", "complex")] = complex
    out.update(numpy_globals())
    return out


_ALLOWED = _allowed()


class AnnotationUnpickler(pickle.Unpickler):
    """``pickle.Unpickler`` whose ``find_class`` answers only from the annotation allow-list."""

    def __init__(self, file: Any, *, source: Path, **kwargs: Any) -> None:
        super().__init__(file, **kwargs)
        self.source = source

    def find_class(self, module: str, name: str) -> Any:
        # Protocol < 3 pickles spell Python 2 names (``__builtin__.set``); map them as pickle does.
        if (module, name) in _compat_pickle.NAME_MAPPING:
            module, name = _compat_pickle.NAME_MAPPING[(module, name)]
        elif module in _compat_pickle.IMPORT_MAPPING:
            module = _compat_pickle.IMPORT_MAPPING[module]
        try:
            return _ALLOWED[(module, name)]
        except KeyError:
            raise InputError(
                f"{self.source}: refusing to unpickle the global '{module}.{name}': annotation "
                "pickles may hold only containers, strings, numbers and numpy arrays "
                "(nothing was executed)"
            ) from None


def load_annotation_pickle(path: str | Path) -> Any:
    """The object in the pickle ``path``, unpickled with :class:`AnnotationUnpickler`."""
    p = Path(path)
    try:
        size = p.stat().st_size
    except OSError as exc:
        raise InputError(f"{p}: cannot read the annotation pickle: {exc.strerror}") from None
    if size > MAX_PICKLE_BYTES:
        raise InputError(
            f"{p}: annotation pickle is {size} bytes, over the {MAX_PICKLE_BYTES}-byte limit"
        )
    data = p.read_bytes()
    try:
        try:
            return AnnotationUnpickler(io.BytesIO(data), source=p).load()
        except UnicodeDecodeError:  # a Python 2 pickle with non-ASCII byte strings
            return AnnotationUnpickler(io.BytesIO(data), source=p, encoding="latin1").load()
    except InputError:
        raise
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError) as exc:
        raise InputError(f"{p}: not a readable annotation pickle: {exc}") from None
    except MemoryError:
        raise InputError(f"{p}: annotation pickle asks for more memory than there is") from None


def _read_text(path: Path, what: str) -> str:
    try:
        size = path.stat().st_size
        if size > MAX_TEXT_BYTES:
            raise InputError(
                f"{path}: {what} is {size} bytes, over the {MAX_TEXT_BYTES}-byte limit"
            )
        return path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise InputError(f"{path}: {what} not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: unreadable {what}: {exc}") from None


def read_list(path: Path) -> list[str]:
    """The entries of a split list (one id per line; blank lines skipped; order kept)."""
    ids = [ln.strip() for ln in _read_text(path, "split list").splitlines() if ln.strip()]
    if not ids:
        raise InputError(f"{path}: the split list is empty")
    dup = [k for k, n in collections.Counter(ids).items() if n > 1]
    if dup:
        raise InputError(f"{path}: {len(dup)} ids listed twice, e.g. {dup[0]!r}")
    return ids


def read_json(path: Path) -> Any:
    """The parsed JSON file ``path``."""
    try:
        return json.loads(_read_text(path, "JSON file"))
    except ValueError as exc:
        raise InputError(f"{path}: not valid JSON: {exc}") from None


def read_csv_rows(path: Path, *, delimiter: str = ",", header: bool = True) -> list[list[str]]:
    """The rows of a CSV/TSV file (without the header row when ``header``)."""
    text = _read_text(path, "CSV file")
    rows = [r for r in csv.reader(io.StringIO(text), delimiter=delimiter) if r]
    if header:
        rows = rows[1:]
    if not rows:
        raise InputError(f"{path}: no rows")
    return rows


def join_tokens(caption: Any, source: Path) -> str:
    """A caption from a pickle as text: token lists joined by single spaces, strings kept."""
    if isinstance(caption, np.ndarray):
        caption = caption.tolist()
    if isinstance(caption, str):
        return caption.strip()
    if isinstance(caption, bytes):
        return caption.decode("utf-8", "replace").strip()
    if isinstance(caption, (list, tuple)) and all(isinstance(t, (str, bytes)) for t in caption):
        words = [t.decode("utf-8", "replace") if isinstance(t, bytes) else t for t in caption]
        return " ".join(words)
    raise InputError(
        f"{source}: a caption is neither a string nor a list of tokens: {caption!r:.80}"
    )


def caption_table(obj: Any, source: Path) -> dict[str, list[str]]:
    """A ``raw-captions.pkl`` object (video id → list of token lists) as id → caption strings."""
    if not isinstance(obj, dict):
        raise InputError(
            f"{source}: expected a dict of video id → captions, got {type(obj).__name__}"
        )
    out: dict[str, list[str]] = {}
    for key, caps in obj.items():
        if isinstance(caps, np.ndarray):
            caps = caps.tolist()
        if not isinstance(caps, (list, tuple)):
            raise InputError(f"{source}: captions of {key!r} are not a list")
        out[str(key)] = [join_tokens(c, source) for c in caps if c is not None]
    return out
