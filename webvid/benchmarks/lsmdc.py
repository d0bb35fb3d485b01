"""LSMDC: the 1,000-clip test protocol and the train split, in both layouts.

Takes a dataset root; produces a :class:`~webvid.benchmarks.items.Benchmark`.

* collaborative-experts (what the official Frozen ``data_loader/LSMDC_dataset.py`` reads):
  ``structured-symlinks/{train,val,test}_list.txt`` and ``raw-captions.pkl`` (clip id → list of
  token lists). The test protocol is one caption per clip — the official loader raises
  ``NotImplementedError`` when a clip has another count, and so does this reader (an InputError).
* CLIP4Clip: the LSMDC 2016 tab-separated files ``LSMDC16_challenge_1000_publictect.csv``
  (test) and ``LSMDC16_annos_training.csv`` (train), columns ``clip_id, start_aligned,
  end_aligned, start_extracted, end_extracted, sentence``, in ``ROOT`` or ``ROOT/lsmdc_data/``.

Videos live in one folder per movie: ``videos/<movie>/<clip>.avi``, the movie being the clip id
up to its last underscore (:func:`~webvid.benchmarks.videos.lsmdc_movie`). The train split keeps
every sentence of a clip.
"""

from __future__ import annotations

from pathlib import Path

from webvid.benchmarks.annotations import (
    caption_table,
    load_annotation_pickle,
    read_csv_rows,
    read_list,
)
from webvid.benchmarks.items import Benchmark
from webvid.benchmarks.layout import assemble, c4c_folder, ce_folder, not_found
from webvid.benchmarks.videos import VideoQuery, lsmdc_movie
from webvid.errors import InputError

CAPTIONS = "raw-captions.pkl"
C4C_FILES = {"test": "LSMDC16_challenge_1000_publictect.csv", "train": "LSMDC16_annos_training.csv"}


def _tsv_captions(path: Path) -> tuple[list[str], dict[str, list[str]]]:
    ids: list[str] = []
    table: dict[str, list[str]] = {}
    for row in read_csv_rows(path, delimiter="\t", header=False):
        if len(row) != 6:
            raise InputError(
                f"{path}: expected 6 tab-separated columns, got {len(row)}: {row!r:.80}"
            )
        if row[0] not in table:
            ids.append(row[0])
        table.setdefault(row[0], []).append(row[5].strip())
    return ids, table


def load(split: str, root: Path, videos: str | Path | VideoQuery | None) -> Benchmark:
    """LSMDC's ``split`` (``test`` or ``train``) under ``root``."""
    list_name = f"{split}_list.txt"
    ce = ce_folder(root, list_name, CAPTIONS)
    c4c = None if ce else c4c_folder(root, "lsmdc", C4C_FILES[split])
    if ce is not None:
        layout, cap_file = "collaborative-experts", ce / CAPTIONS
        ids = read_list(ce / list_name)
        table = caption_table(load_annotation_pickle(cap_file), cap_file)
        sources = [ce / list_name, cap_file]
    elif c4c is not None:
        layout, cap_file = "clip4clip", c4c / C4C_FILES[split]
        ids, table = _tsv_captions(cap_file)
        sources = [cap_file]
    else:
        raise not_found(
            root,
            "LSMDC",
            [
                f"{{high-quality/,}}structured-symlinks/{{{list_name},{CAPTIONS}}} "
                "(collaborative-experts)",
                f"{{.,lsmdc_data}}/{C4C_FILES[split]} (CLIP4Clip)",
            ],
        )
    captions = []
    for vid in ids:
        caps = table.get(vid)
        if not caps:
            raise InputError(f"{cap_file}: no caption for the listed clip {vid!r}")
        if split == "test" and len(caps) != 1:
            raise InputError(
                f"{cap_file}: clip {vid!r} has {len(caps)} captions; the LSMDC test protocol "
                "has exactly one per clip (the official loader refuses others too)"
            )
        captions.append(caps)
    return assemble(
        name="lsmdc" if split == "test" else f"lsmdc-{split}", dataset="lsmdc", split=split,
        layout=layout, root=root, videos=videos, ids=ids, captions=captions,
        directions=("t2v", "v2t"), sources=sources, movies=[lsmdc_movie(v) for v in ids],
    )  # fmt: skip
