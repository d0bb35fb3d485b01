"""MSR-VTT: the 1k-A, 1k-B and full test protocols and the 9k training split, in both layouts.

Takes a dataset root; produces a :class:`~webvid.benchmarks.items.Benchmark`.

Protocols (official Frozen ``data_loader/MSRVTT_dataset.py`` and collaborative-experts
``data_loader/MSRVTT_dataset.py`` with ``base/base_dataset.py``):

* ``msrvtt-1ka`` (JSFusion): the videos of ``val_list_jsfusion.txt`` (1,000), each queried by
  the ONE caption ``jsfusion_val_caption_idx.pkl`` designates (an index into that video's
  captions); CLIP4Clip's ``MSRVTT_JSFUSION_test.csv`` lists the same 1,000 (video, sentence)
  pairs directly. 1,000 queries × 1,000 videos.
* ``msrvtt-1kb`` (Miech): ``test_list_miech.txt`` (1,000), each video's FIRST caption (CE:
  "we follow Antoine's approach of using the first text caption"; Frozen's test split also
  takes ``captions[0]``). 1,000 × 1,000.
* ``msrvtt-full``: ``test_list_full.txt`` (2,990), EVERY caption a query (CE evaluates it with
  ``num_test_captions: 20``; 20 per video but for a few, so the query count is 2,990 × 20
  minus CE's expected 6 missing = 59,794). Multi-caption semantics: see docs/benchmarks-data.md.
* train: ``train_list_jsfusion.txt`` (9,000; the 1k-A training set), every caption.

Captions come, in annotation order, from ``annotation/MSR_VTT.json`` when present (what the
official Frozen loader reads), else from CE's ``raw-captions.pkl`` (token lists joined by single
spaces); the designated index indexes that order. In the CLIP4Clip layout they come from
``MSRVTT_data.json`` (``sentences: [{video_id, caption}]``, file order).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from webvid.benchmarks.annotations import (
    caption_table,
    load_annotation_pickle,
    read_csv_rows,
    read_json,
    read_list,
)
from webvid.benchmarks.items import Benchmark
from webvid.benchmarks.layout import assemble, c4c_folder, ce_folder, not_found
from webvid.benchmarks.videos import VideoQuery
from webvid.errors import InputError

#: protocol → (CE list file, split name)
LISTS = {
    "msrvtt-1ka": ("val_list_jsfusion.txt", "test"),
    "msrvtt-1kb": ("test_list_miech.txt", "test"),
    "msrvtt-full": ("test_list_full.txt", "test"),
    "msrvtt-train": ("train_list_jsfusion.txt", "train"),
}
JSFUSION_IDX = "jsfusion_val_caption_idx.pkl"
JSFUSION_CSV = "MSRVTT_JSFUSION_test.csv"
C4C_JSON = "MSRVTT_data.json"
C4C_TRAIN = "MSRVTT_train.9k.csv"
DIRECTIONS = ("t2v", "v2t")


def load(name: str, root: Path, videos: str | Path | VideoQuery | None) -> Benchmark:
    """The MSR-VTT split ``name`` (a key of :data:`LISTS`) under ``root``."""
    list_name, split = LISTS[name]
    ce = ce_folder(root, list_name)
    if ce is not None:
        return _load_ce(name, root, ce, videos)
    c4c = c4c_folder(root, "msrvtt", JSFUSION_CSV if name == "msrvtt-1ka" else C4C_JSON)
    if c4c is not None:
        return _load_c4c(name, root, c4c, videos)
    c4c_files = {"msrvtt-1ka": JSFUSION_CSV, "msrvtt-train": f"{C4C_JSON} + {C4C_TRAIN}"}
    raise not_found(
        root,
        "MSR-VTT",
        [
            f"{{high-quality/,}}structured-symlinks/{list_name} (collaborative-experts)",
            f"{{.,msrvtt_data}}/{c4c_files.get(name, C4C_JSON)} (CLIP4Clip)",
        ],
    )


def _ce_captions(root: Path, ce: Path) -> tuple[dict[str, list[str]], Path]:
    js = root / "annotation" / "MSR_VTT.json"
    if js.is_file():
        return json_captions(js), js
    pkl = ce / "raw-captions.pkl"
    if pkl.is_file():
        return caption_table(load_annotation_pickle(pkl), pkl), pkl
    raise InputError(f"{root}: neither annotation/MSR_VTT.json nor {pkl} found (MSR-VTT captions)")


def json_captions(path: Path) -> dict[str, list[str]]:
    """``MSR_VTT.json`` (``annotations: [{image_id, caption}]``) as id → captions, file order."""
    data = read_json(path)
    anns = data.get("annotations") if isinstance(data, dict) else None
    if not isinstance(anns, list):
        raise InputError(f"{path}: expected an object with an 'annotations' list")
    table: dict[str, list[str]] = {}
    for a in anns:
        if not isinstance(a, dict) or "image_id" not in a or "caption" not in a:
            raise InputError(f"{path}: an annotation lacks 'image_id' or 'caption': {a!r:.80}")
        table.setdefault(str(a["image_id"]), []).append(str(a["caption"]).strip())
    return table


def _designated(ce: Path, ids: list[str], caps: dict[str, list[str]]) -> list[list[str]]:
    path = ce / JSFUSION_IDX
    if not path.is_file():
        raise InputError(
            f"{path}: not found (the 1k-A protocol's designated caption of each video)"
        )
    idx: Any = load_annotation_pickle(path)
    if not isinstance(idx, dict):
        raise InputError(f"{path}: expected a dict of video id → caption index")
    out = []
    for vid in ids:
        if vid not in idx:
            raise InputError(f"{path}: no designated caption for video {vid!r}")
        try:
            i = int(idx[vid])
        except (TypeError, ValueError):
            raise InputError(f"{path}: caption index of {vid!r} is not an integer") from None
        if not 0 <= i < len(caps[vid]):
            raise InputError(
                f"{path}: video {vid!r} has {len(caps[vid])} captions, index {i} is out of range"
            )
        out.append([caps[vid][i]])
    return out


def _load_ce(name: str, root: Path, ce: Path, videos: str | Path | VideoQuery | None) -> Benchmark:
    list_name, split = LISTS[name]
    ids = read_list(ce / list_name)
    caps, cap_file = _ce_captions(root, ce)
    missing = [v for v in ids if not caps.get(v)]
    if missing:
        raise InputError(
            f"{cap_file}: no captions for {len(missing)} listed videos, e.g. {missing[0]!r}"
        )
    sources = [ce / list_name, cap_file]
    if name == "msrvtt-1ka":
        captions = _designated(ce, ids, caps)
        sources.append(ce / JSFUSION_IDX)
    elif name == "msrvtt-1kb":
        captions = [caps[v][:1] for v in ids]
    else:
        captions = [caps[v] for v in ids]
    return assemble(
        name=name, dataset="msrvtt", split=split, layout="collaborative-experts", root=root,
        videos=videos, ids=ids, captions=captions, directions=DIRECTIONS, sources=sources,
    )  # fmt: skip


def _c4c_sentences(path: Path) -> tuple[dict[str, list[str]], list[str]]:
    """``MSRVTT_data.json`` → (id → captions in file order, ids of its ``split == "test"`` videos)."""
    data = read_json(path)
    sents = data.get("sentences") if isinstance(data, dict) else None
    vids = data.get("videos") if isinstance(data, dict) else None
    if not isinstance(sents, list) or not isinstance(vids, list):
        raise InputError(f"{path}: expected an object with 'sentences' and 'videos' lists")
    table: dict[str, list[str]] = {}
    for s in sents:
        if not isinstance(s, dict) or "video_id" not in s or "caption" not in s:
            raise InputError(f"{path}: a sentence lacks 'video_id' or 'caption': {s!r:.80}")
        table.setdefault(str(s["video_id"]), []).append(str(s["caption"]).strip())
    test = [str(v["video_id"]) for v in vids if isinstance(v, dict) and v.get("split") == "test"]
    return table, test


def _csv_column(path: Path, header: list[str], name: str) -> int:
    if name not in header:
        raise InputError(f"{path}: no '{name}' column (columns: {', '.join(header)})")
    return header.index(name)


def _load_c4c(
    name: str, root: Path, c4c: Path, videos: str | Path | VideoQuery | None
) -> Benchmark:
    split = LISTS[name][1]
    if name == "msrvtt-1ka":
        path = c4c / JSFUSION_CSV
        rows = read_csv_rows(path, header=False)
        head, body = rows[0], rows[1:]
        iv, isent = _csv_column(path, head, "video_id"), _csv_column(path, head, "sentence")
        ids = [r[iv] for r in body]
        if len(set(ids)) != len(ids):
            raise InputError(f"{path}: a video is listed twice (1k-A has one sentence per video)")
        return assemble(
            name=name, dataset="msrvtt", split=split, layout="clip4clip", root=root,
            videos=videos, ids=ids, captions=[[r[isent].strip()] for r in body],
            directions=DIRECTIONS, sources=[path],
        )  # fmt: skip
    js = c4c / C4C_JSON
    table, test_ids = _c4c_sentences(js)
    sources = [js]
    if name == "msrvtt-train":
        path = c4c / C4C_TRAIN
        rows = read_csv_rows(path, header=False)
        iv = _csv_column(path, rows[0], "video_id")
        ids = [r[iv] for r in rows[1:]]
        sources.append(path)
    else:
        list_name = LISTS[name][0]
        listed = next((d / list_name for d in (c4c, root) if (d / list_name).is_file()), None)
        if listed is not None:
            ids = read_list(listed)
            sources.append(listed)
        elif name == "msrvtt-full":
            ids = test_ids  # MSR-VTT's official test split: the same 2,990 videos
        else:
            raise InputError(
                f"{c4c}: {list_name} not found; CLIP4Clip's archive has no 1k-B list — put "
                "collaborative-experts' test_list_miech.txt beside MSRVTT_data.json"
            )
    missing = [v for v in ids if not table.get(v)]
    if missing:
        raise InputError(
            f"{js}: no sentences for {len(missing)} listed videos, e.g. {missing[0]!r}"
        )
    captions = [table[v][:1] if name == "msrvtt-1kb" else table[v] for v in ids]
    return assemble(
        name=name, dataset="msrvtt", split=split, layout="clip4clip", root=root, videos=videos,
        ids=ids, captions=captions, directions=DIRECTIONS, sources=sources,
    )  # fmt: skip
