"""MSVD: the 670-video test protocol (every caption a query, t2v) and the train split.

Takes a dataset root; produces a :class:`~webvid.benchmarks.items.Benchmark`.

Both layouts hold the same two kinds of file — ``raw-captions.pkl`` (video id → list of token
lists) and ``{train,val,test}_list.txt`` — collaborative-experts in
``{high-quality/,}structured-symlinks/``, CLIP4Clip (``msvd_data.zip``) in ``ROOT`` or
``ROOT/msvd_data/``. Protocol: CE ``data_loader/MSVD_dataset.py`` (``"official":
"test_list.txt"``, ``num_test_captions: 81`` with query masks) and CLIP4Clip
``dataloaders/dataloader_msvd_retrieval.py`` (one query per caption): each of the 670 test
videos is queried by EVERY one of its captions, in annotation order (about 27,763 queries; the
count varies per video, up to 81). The Frozen authors report text→video only (frozen-in-time
issues #48 and #53), so :attr:`Benchmark.directions` is ``("t2v",)``.
"""

from __future__ import annotations

from pathlib import Path

from webvid.benchmarks.annotations import caption_table, load_annotation_pickle, read_list
from webvid.benchmarks.items import Benchmark
from webvid.benchmarks.layout import assemble, c4c_folder, ce_folder, not_found
from webvid.benchmarks.videos import VideoQuery
from webvid.errors import InputError

CAPTIONS = "raw-captions.pkl"


def load(split: str, root: Path, videos: str | Path | VideoQuery | None) -> Benchmark:
    """MSVD's ``split`` (``test`` or ``train``) under ``root``."""
    list_name = f"{split}_list.txt"
    folder, layout = ce_folder(root, list_name, CAPTIONS), "collaborative-experts"
    if folder is None:
        folder, layout = c4c_folder(root, "msvd", list_name, CAPTIONS), "clip4clip"
    if folder is None:
        raise not_found(
            root,
            "MSVD",
            [
                f"{{high-quality/,}}structured-symlinks/{{{list_name},{CAPTIONS}}} "
                "(collaborative-experts)",
                f"{{.,msvd_data}}/{{{list_name},{CAPTIONS}}} (CLIP4Clip)",
            ],
        )
    ids = read_list(folder / list_name)
    table = caption_table(load_annotation_pickle(folder / CAPTIONS), folder / CAPTIONS)
    missing = [v for v in ids if not table.get(v)]
    if missing:
        raise InputError(
            f"{folder / CAPTIONS}: no captions for {len(missing)} listed videos, "
            f"e.g. {missing[0]!r}"
        )
    return assemble(
        name="msvd" if split == "test" else f"msvd-{split}", dataset="msvd", split=split,
        layout=layout, root=root, videos=videos, ids=ids, captions=[table[v] for v in ids],
        directions=("t2v",), sources=[folder / list_name, folder / CAPTIONS],
    )  # fmt: skip
