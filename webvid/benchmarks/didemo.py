"""DiDeMo: the paragraph-to-video test protocol and the train split, in both layouts.

Takes a dataset root; produces a :class:`~webvid.benchmarks.items.Benchmark`.

Each video is ONE query: its sentences, in annotation order, joined by single spaces
(collaborative-experts ``configs/data_loader_didemo.json`` ``fuse_captions: true``;
CLIP4Clip ``dataloaders/dataloader_didemo_retrieval.py`` ``" ".join(caption_dict[k]["text"])``).
The train split is read the same way (both codes train on the paragraph too).

List entries keep the original file names (``…_d8b58466fa.mov``, ``….3gp``, or a bare trailing
``.``); a video's id is the entry up to its first dot, and its file is the entry itself or
``<id>.<ext>``.

* collaborative-experts: ``{high-quality/,}structured-symlinks/{train,val,test}_list.txt`` and
  ``raw-captions.pkl`` (list entry, or id, → list of sentence token lists);
* CLIP4Clip: ``{train,test}_list.txt`` beside LocalizingMoments' ``{train,test}_data.json``
  (a list of ``{"video": <entry>, "description": …, "times": …}``, one per sentence), in
  ``ROOT`` or ``ROOT/didemo_data/``.
"""

from __future__ import annotations

from pathlib import Path

from webvid.benchmarks.annotations import (
    caption_table,
    load_annotation_pickle,
    read_json,
    read_list,
)
from webvid.benchmarks.items import Benchmark
from webvid.benchmarks.layout import assemble, c4c_folder, ce_folder, not_found
from webvid.benchmarks.videos import VideoQuery
from webvid.errors import InputError

CAPTIONS = "raw-captions.pkl"


def video_id(entry: str) -> str:
    """A DiDeMo list entry's video id: the part before the first dot."""
    return entry.split(".", 1)[0]


def _json_sentences(path: Path) -> dict[str, list[str]]:
    data = read_json(path)
    if not isinstance(data, list):
        raise InputError(f"{path}: expected a list of {{video, description, times}} objects")
    table: dict[str, list[str]] = {}
    for a in data:
        if not isinstance(a, dict) or "video" not in a or "description" not in a:
            raise InputError(f"{path}: an annotation lacks 'video' or 'description': {a!r:.80}")
        table.setdefault(str(a["video"]), []).append(str(a["description"]).strip())
    return table


def load(split: str, root: Path, videos: str | Path | VideoQuery | None) -> Benchmark:
    """DiDeMo's ``split`` (``test`` or ``train``) under ``root``."""
    list_name, json_name = f"{split}_list.txt", f"{split}_data.json"
    ce = ce_folder(root, list_name, CAPTIONS)
    c4c = None if ce else c4c_folder(root, "didemo", list_name, json_name)
    if ce is not None:
        folder, layout, cap_file = ce, "collaborative-experts", ce / CAPTIONS
        table = caption_table(load_annotation_pickle(cap_file), cap_file)
    elif c4c is not None:
        folder, layout, cap_file = c4c, "clip4clip", c4c / json_name
        table = _json_sentences(cap_file)
    else:
        raise not_found(
            root,
            "DiDeMo",
            [
                f"{{high-quality/,}}structured-symlinks/{{{list_name},{CAPTIONS}}} "
                "(collaborative-experts)",
                f"{{.,didemo_data}}/{{{list_name},{json_name}}} (CLIP4Clip)",
            ],
        )
    entries = read_list(folder / list_name)
    ids = [video_id(e) for e in entries]
    paragraphs = []
    for entry, vid in zip(entries, ids, strict=True):
        sentences = table.get(entry) or table.get(vid)
        if not sentences:
            raise InputError(f"{cap_file}: no sentences for the listed video {entry!r}")
        paragraphs.append([" ".join(s for s in sentences if s)])
    return assemble(
        name="didemo" if split == "test" else f"didemo-{split}", dataset="didemo", split=split,
        layout=layout, root=root, videos=videos, ids=ids, captions=paragraphs,
        directions=("t2v", "v2t"), sources=[folder / list_name, cap_file], entries=entries,
    )  # fmt: skip
