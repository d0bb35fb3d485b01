"""webvid score with decode workers: the same table, parts and broken records as without.

The shard set mixes pre-extracted frames and real mp4 clips (ffmpeg in the workers), a
broken sample between two good ones, and an empty shard.
"""

from __future__ import annotations

import io
import shutil
import tarfile
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from webvid.clips.sample import ClipOptions
from webvid.curate import decode
from webvid.curate.parts import EmbedOptions, find_shards, parts_dir
from webvid.curate.score import ScoreOptions, score
from webvid.synth import shards as synth

from .conftest import specs


def _add(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    tar.addfile(info, io.BytesIO(data))


@pytest.fixture(scope="module")
def mixed_shards(clip_shards: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """clip_shards (4 × 3 clips of JPEG frames) + 00004: mp4, broken, mp4 + 00005: empty."""
    root = tmp_path_factory.mktemp("workers") / "shards"
    shutil.copytree(clip_shards, root)
    (mp4,) = synth.write_video_shards(root.parent / "mp4", specs(2), per_shard=2, frames=8)
    with tarfile.open(mp4) as src:
        members = {m.name: src.extractfile(m).read() for m in src if m.isfile()}  # type: ignore[union-attr]
    with tarfile.open(root / "00004.tar", "w", format=tarfile.USTAR_FORMAT) as tar:
        for old, new in (("000000000", "000040000"), ("000000001", "000040002")):
            if new == "000040002":
                _add(tar, "000040001.mp4", b"not a video")
                _add(tar, "000040001.txt", b"a caption")
            for ext in ("mp4", "txt", "json"):
                _add(
                    tar, f"{new}.{ext}", members[f"{old}.{ext}"].replace(old.encode(), new.encode())
                )
    tarfile.open(root / "00005.tar", "w").close()
    return root


OPTS = ScoreOptions(embed=EmbedOptions(batch_size=2))


@pytest.fixture(scope="module")
def alone(tiny_ckpt: Path, mixed_shards: Path, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """The shard set scored without workers (decoded in this process)."""
    return score(tiny_ckpt, mixed_shards, tmp_path_factory.mktemp("w0") / "scores.parquet", OPTS)


@pytest.mark.filterwarnings("ignore:This DataLoader will create")  # 3 workers on 2 cores
@pytest.mark.parametrize("workers", [2, 3])
def test_the_table_and_parts_are_the_same_bytes_with_workers(
    tiny_ckpt: Path, mixed_shards: Path, alone: dict, tmp_path: Path, workers: int
) -> None:
    out = tmp_path / "scores.parquet"
    res = score(tiny_ckpt, mixed_shards, out, OPTS, workers=workers)
    assert (res["samples"], res["broken"], res["shards"]) == (15, 1, 6)
    assert {k: v for k, v in res.items() if k != "path"} == {
        k: v for k, v in alone.items() if k != "path"
    }
    assert out.read_bytes() == Path(alone["path"]).read_bytes()
    ours = sorted(parts_dir(out).glob("*.parquet"))
    theirs = sorted(parts_dir(Path(alone["path"])).glob("*.parquet"))
    assert len(ours) == 6
    assert [p.read_bytes() for p in ours] == [p.read_bytes() for p in theirs]
    rows = pq.read_table(out).to_pylist()
    assert [r["key"] for r in rows[-4:]] == ["000030002", "000040000", "000040002", "000040001"]
    assert rows[-1]["broken"] and rows[-1]["caption_cosine"] is None  # recorded in a worker
    assert rows[-2]["caption"].startswith("a ") and rows[-2]["caption_cosine"] is not None


def test_workers_decode_whole_shards_side_by_side(tiny_ckpt: Path, mixed_shards: Path) -> None:
    """Each shard's items in tar order, then its end marker; two workers interleave two shards."""
    tars = find_shards(mixed_shards)
    todo = list(enumerate(tars))
    clip = ClipOptions(size=32, train=False, short_side=32)
    items = list(decode.loader(todo, 4, clip, workers=2))
    assert [it["shard"] for it in items[:4]] == [0, 1, 0, 1]  # decoded at the same time
    for i, tar in todo:
        mine = [it for it in items if it["shard"] == i]
        with tarfile.open(tar) as tf:
            keys = list(dict.fromkeys(m.name.split(".")[0] for m in tf if m.isfile()))
        assert [it["key"] for it in mine[:-1]] == keys
        assert mine[-1] == {"shard": i, "end": len(keys)}
    broken = [it for it in items if "broken" in it]
    assert broken == [{"shard": 4, "key": "000040001", "broken": broken[0]["broken"]}]
    assert all(it["clips"].shape == (1, 4, 3, 32, 32) for it in items if "clips" in it)
    assert decode.loader(todo[:2], 4, clip, workers=8).num_workers == 2  # one a shard at most
    assert decode.loader(todo, 4, clip, workers=0).num_workers == 0
