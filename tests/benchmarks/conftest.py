"""Small benchmark datasets in both community layouts, built once per session.

``bench_roots`` writes, under one temporary folder, a dataset root per (dataset, layout): the
annotation files the readers expect (JSON, CSV/TSV, list files and pickles written with
``pickle.dumps`` of plain data and numpy ints/arrays) and tiny real videos (ffmpeg ``testsrc``
and ``color`` sources, 48×32 px, 8 frames, in the container each dataset ships: mp4, avi, mov).
The ``facts`` fixture hands the tests the ids, caption makers and counts the fixtures hold.
"""

from __future__ import annotations

import csv
import io
import json
import pickle
import shutil
import subprocess
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest

COLOURS = ("red", "green", "blue", "yellow", "white", "magenta", "cyan", "orange")

MSRVTT_IDS = [f"video{7020 + i}" for i in range(6)]
#: the 1k-A designated caption of each listed video: never the first one
MSRVTT_DESIGNATED = {"video7020": 2, "video7021": 3, "video7022": 1, "video7023": 2}
MSVD_TEST = {"-4wsuPCjDBc_5_15": 3, "eyhzdC936uk_15_27": 1, "f9Won2JpOEU_60_80": 5}
MSVD_TRAIN = {"zzit5b_-ukg_5_20": 2}
DIDEMO_TEST = {  # list entry → sentences
    "10015567@N08_3655084291_d8b58466fa.mov": 3,
    "10052357@N03_7585070382_5762149bfc.": 2,
    "10149286@N00_5135045216_643d0b0a92.3gp": 4,
}
DIDEMO_TRAIN = {"100233434@N08_9622921646_c39ac10ea3.mp4": 2}
LSMDC_TEST = [
    "1001_Flight_00.00.51.110-00.00.54.515",
    "1001_Flight_00.01.02.000-00.01.04.500",
    "0005_Some_Like_It_Hot_01.02.03.400-01.02.05.000",
]
LSMDC_TRAIN = {"1001_Flight_00.09.00.000-00.09.03.000": 2}


def msrvtt_caption(vid: str, j: int) -> str:
    return f"clip {vid} shows scene number {j}"


def msvd_caption(vid: str, j: int) -> str:
    return f"a person in {vid} does thing {j}"


def sentence(entry: str, j: int) -> str:
    return f"moment {j} of {entry.split('.')[0][:8]} happens"


class ClipBank:
    """Tiny real videos, made once with ffmpeg and copied where each layout wants them."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.made: dict[tuple[int, str], Path] = {}

    def clip(self, i: int, ext: str) -> Path:
        key = (i % len(COLOURS), ext)
        if key not in self.made:
            out = self.folder / f"c{key[0]}{ext}"
            src = (
                f"testsrc=s=48x32:d=1:r=8,hue=h={40 * key[0]}"
                if key[0] % 2
                else f"color=c={COLOURS[key[0]]}:s=48x32:d=1:r=8"
            )
            codec = (
                ["-c:v", "libx264", "-pix_fmt", "yuv420p"] if ext == ".mp4" else ["-c:v", "mpeg4"]
            )
            subprocess.run(
                ["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", src, *codec, str(out)],
                check=True,
            )
            self.made[key] = out
        return self.made[key]

    def put(self, i: int, dest: Path) -> None:
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(self.clip(i, Path(dest.name).suffix.lower() or ".mp4"), dest)


def _tokens(text: str) -> list[str]:
    return text.split(" ")


def _write(path: Path, data: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(data, bytes):
        path.write_bytes(data)
    elif isinstance(data, str):
        path.write_text(data)
    else:
        path.write_text(json.dumps(data))


def _lines(ids: list[str]) -> str:
    return "\n".join(ids) + "\n"


def msrvtt_captions() -> dict[str, list[str]]:
    # video7025 has 3 captions, the others 4 (MSR-VTT has a few 19-caption videos)
    return {
        v: [msrvtt_caption(v, j) for j in range(3 if v == "video7025" else 4)] for v in MSRVTT_IDS
    }


def build_msrvtt_ce(root: Path, bank: ClipBank) -> None:
    caps = msrvtt_captions()
    # annotation order interleaves videos: the per-video order is caption j ascending
    anns = [
        {"image_id": v, "caption": caps[v][j], "id": n}
        for n, (j, v) in enumerate((j, v) for j in range(4) for v in MSRVTT_IDS)
        if j < len(caps[v])
    ]
    _write(root / "annotation" / "MSR_VTT.json", {"annotations": anns, "videos": []})
    ss = root / "high-quality" / "structured-symlinks"
    _write(ss / "val_list_jsfusion.txt", _lines(list(MSRVTT_DESIGNATED)))
    idx = {v: (np.int64(i) if n % 2 else i) for n, (v, i) in enumerate(MSRVTT_DESIGNATED.items())}
    _write(ss / "jsfusion_val_caption_idx.pkl", pickle.dumps(idx))
    _write(ss / "test_list_miech.txt", _lines(MSRVTT_IDS[2:5]))
    _write(ss / "test_list_full.txt", _lines(MSRVTT_IDS))
    _write(ss / "train_list_jsfusion.txt", _lines(MSRVTT_IDS[4:]))
    for i, v in enumerate(MSRVTT_IDS):
        bank.put(i, root / "videos" / "all" / f"{v}.mp4")


def build_msrvtt_c4c(root: Path, bank: ClipBank) -> None:
    caps = msrvtt_captions()
    d = root / "msrvtt_data"
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(["key", "vid_key", "video_id", "sentence"])
    for n, (v, i) in enumerate(MSRVTT_DESIGNATED.items()):
        w.writerow([f"ret{n}", f"msr{v[5:]}", v, caps[v][i]])
    _write(d / "MSRVTT_JSFUSION_test.csv", buf.getvalue())
    videos = [{"video_id": v, "split": "test", "url": "x"} for v in MSRVTT_IDS]
    videos.append({"video_id": "video1", "split": "train", "url": "x"})
    caps["video1"] = ["an unused training video"]
    sentences = [
        {"video_id": v, "caption": c, "sen_id": n}
        for n, (v, c) in enumerate((v, c) for v, cs in caps.items() for c in cs)
    ]
    _write(d / "MSRVTT_data.json", {"videos": videos, "sentences": sentences})
    _write(d / "MSRVTT_train.9k.csv", "video_id\nvideo7024\nvideo7025\n")
    _write(d / "test_list_miech.txt", _lines(MSRVTT_IDS[2:5]))
    for i, v in enumerate(MSRVTT_IDS):
        bank.put(i, root / "MSRVTT_Videos" / f"{v}.mp4")


def _msvd_pickle(spec: dict[str, int]) -> dict[str, list[list[str]]]:
    return {v: [_tokens(msvd_caption(v, j)) for j in range(n)] for v, n in spec.items()}


def build_msvd(root: Path, bank: ClipBank, layout: str) -> None:
    d = root / "structured-symlinks" if layout == "ce" else root / "msvd_data"
    _write(d / "test_list.txt", _lines(list(MSVD_TEST)))
    _write(d / "train_list.txt", _lines(list(MSVD_TRAIN)))
    _write(
        d / "raw-captions.pkl", pickle.dumps(_msvd_pickle({**MSVD_TEST, **MSVD_TRAIN}), protocol=2)
    )
    ext = ".avi" if layout == "ce" else ".AVI"  # MSVD's YouTubeClips are .avi; any case
    for i, v in enumerate([*MSVD_TEST, *MSVD_TRAIN]):
        bank.put(i + 1, root / "videos" / f"{v}{ext}")


def _didemo_file(entry: str) -> str:
    """The file a DiDeMo entry is stored as here: the entry itself if it ends in a known video
    extension (.mov, .mp4), else ``<id>.mp4`` (bare ``.`` and ``.3gp`` were transcoded)."""
    stem, _, ext = entry.partition(".")
    return entry if ext in ("mov", "mp4") else f"{stem}.mp4"


def build_didemo(root: Path, bank: ClipBank, layout: str) -> None:
    spec = {**DIDEMO_TEST, **DIDEMO_TRAIN}
    if layout == "ce":
        d = root / "structured-symlinks"
        table = {e: [_tokens(sentence(e, j)) for j in range(n)] for e, n in spec.items()}
        table[next(iter(DIDEMO_TEST))] = np.array(table[next(iter(DIDEMO_TEST))], dtype=object)
        _write(d / "raw-captions.pkl", pickle.dumps(table))
    else:
        d = root
        anns = [  # interleaved across videos, plus a video that is in no list
            {"video": e, "description": sentence(e, j), "times": [[j, j]], "annotation_id": 0}
            for j in range(4)
            for e, n in [*spec.items(), ("999@N00_1_x.mp4", 1)]
            if j < n
        ]
        _write(d / "test_data.json", [a for a in anns if a["video"] not in DIDEMO_TRAIN])
        _write(d / "train_data.json", [a for a in anns if a["video"] in DIDEMO_TRAIN])
    _write(d / "test_list.txt", _lines(list(DIDEMO_TEST)))
    _write(d / "train_list.txt", _lines(list(DIDEMO_TRAIN)))
    for i, e in enumerate(spec):
        bank.put(i + 2, root / "videos" / _didemo_file(e))


def lsmdc_caption(clip: str, j: int = 0) -> str:
    return f"someone in {clip[:11]} looks up {j}"


def build_lsmdc(root: Path, bank: ClipBank, layout: str) -> None:
    if layout == "ce":
        d = root / "structured-symlinks"
        table = {c: [_tokens(lsmdc_caption(c))] for c in LSMDC_TEST}
        table.update(
            {c: [_tokens(lsmdc_caption(c, j)) for j in range(n)] for c, n in LSMDC_TRAIN.items()}
        )
        _write(d / "raw-captions.pkl", pickle.dumps(table, protocol=4))
        _write(d / "test_list.txt", _lines(LSMDC_TEST))
        _write(d / "train_list.txt", _lines(list(LSMDC_TRAIN)))
    else:
        row = "{}\t00.00.00.000\t00.00.01.000\t00.00.00.000\t00.00.01.000\t{}\n"
        _write(
            root / "LSMDC16_challenge_1000_publictect.csv",
            "".join(row.format(c, lsmdc_caption(c)) for c in LSMDC_TEST),
        )
        _write(
            root / "LSMDC16_annos_training.csv",
            "".join(
                row.format(c, lsmdc_caption(c, j)) for c, n in LSMDC_TRAIN.items() for j in range(n)
            ),
        )
    for i, c in enumerate([*LSMDC_TEST, *LSMDC_TRAIN]):
        movie = c.rpartition("_")[0]
        bank.put(i + 3, root / "videos" / movie / f"{c}.avi")


@pytest.fixture(scope="session")
def bench_roots(tmp_path_factory) -> dict[str, Path]:
    """``{"<dataset>-<ce|c4c>": root}`` for every dataset and layout (see the module docstring)."""
    if shutil.which("ffmpeg") is None:
        pytest.skip("ffmpeg is required")
    base = tmp_path_factory.mktemp("bench")
    bank = ClipBank(base)
    roots = {}
    for name in ("msrvtt", "msvd", "didemo", "lsmdc"):
        for layout in ("ce", "c4c"):
            root = base / f"{name}-{layout}"
            if name == "msrvtt":
                (build_msrvtt_ce if layout == "ce" else build_msrvtt_c4c)(root, bank)
            else:
                {"msvd": build_msvd, "didemo": build_didemo, "lsmdc": build_lsmdc}[name](
                    root, bank, layout
                )
            roots[f"{name}-{layout}"] = root
    return roots


@pytest.fixture(scope="session")
def facts() -> SimpleNamespace:
    """The fixtures' ids, designated indices and caption makers (what the readers must return)."""
    names = ("MSRVTT_IDS", "MSRVTT_DESIGNATED", "MSVD_TEST", "MSVD_TRAIN", "DIDEMO_TEST")
    names += ("DIDEMO_TRAIN", "LSMDC_TEST", "LSMDC_TRAIN", "msrvtt_caption", "msvd_caption")
    names += ("sentence", "lsmdc_caption")
    return SimpleNamespace(**{n: globals()[n] for n in names})
