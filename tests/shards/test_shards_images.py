"""The image path: an image crawl becomes img2dataset-compatible KEY.jpg shards."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

import pyarrow.parquet as pq
import webdataset as wds
from PIL import Image

from webvid import contract
from webvid.shards.run import run
from webvid.synth.crawl_dir import Entry, make_picture, make_video


def test_image_crawl(tmp_path: Path, make_crawl, shards_recipe) -> None:
    d = tmp_path / "media"
    small = make_picture(d / "small.jpg", seed=1)  # 96x64 JPEG: kept as is
    big = make_picture(d / "big.jpg", seed=2, size=(640, 480))  # resized to 341x256
    png = make_picture(d / "alpha.png", seed=3)  # PNG: re-encoded as JPEG
    rotated = make_picture(d / "rot.jpg", seed=4, size=(120, 80), exif_orientation=6)
    near = d / "near.jpg"  # the big one, smaller and worse: a near-duplicate
    Image.open(big).resize((320, 240)).save(near, quality=40)
    truncated = d / "cut.jpg"
    truncated.write_bytes(big.read_bytes()[:3000])
    (d / "text.jpg").write_text("not an image at all\n" * 10)
    clip = make_video(d / "clip.mp4", seed=5)
    entries = [
        Entry("small", "A patchwork of coloured squares", small, ext="jpg", media_kind="image"),
        Entry("big", "A large patchwork of coloured squares", big, ext="jpg", media_kind="image"),
        Entry("png", "A patchwork saved as a PNG file", png, ext="png", media_kind="image"),
        Entry("rot", "A phone photo taken sideways", rotated, ext="jpg", media_kind="image"),
        Entry(
            "tiny",
            "A tiny thumbnail of a patchwork",
            make_picture(d / "tiny.jpg", seed=6, size=(24, 16)),
            ext="jpg",
            media_kind="image",
        ),
        Entry(
            "wide",
            "A very wide banner of colours",
            make_picture(d / "wide.jpg", seed=7, size=(400, 40)),
            ext="jpg",
            media_kind="image",
        ),
        Entry("zdup", "An exact copy of the small patchwork", small, ext="jpg", media_kind="image"),
        Entry("znear", "The large patchwork again, smaller", near, ext="jpg", media_kind="image"),
        Entry(
            "cut", "A photo whose download was cut short", truncated, ext="jpg", media_kind="image"
        ),
        Entry("text", "A page that is not an image", d / "text.jpg", ext="jpg", media_kind="image"),
        Entry("video", "A video where an image should be", clip, ext="mp4", media_kind="image"),
    ]
    crawl = make_crawl(entries)
    out = tmp_path / "out"
    summary = run(shards_recipe("media_kind=image"), [crawl], out)
    rows = {r["clip_id"]: r for r in pq.read_table(out / contract.VERDICTS_NAME).to_pylist()}
    assert {k: (r["reason"], r["transform"]) for k, r in rows.items()} == {
        "big": (None, "resize"),
        "png": (None, "resize"),
        "rot": (None, "resize"),
        "small": (None, "copy"),
        "tiny": ("too_small", None),
        "wide": ("aspect_ratio", None),
        "zdup": ("duplicate_exact", None),
        "znear": ("duplicate_near", None),
        "cut": ("truncated", None),
        "text": ("not_media", None),
        "video": ("not_image", None),
    }
    assert summary.kept == 4 and rows["rot"]["width"] == 80 and rows["rot"]["height"] == 120
    assert rows["rot"]["rotation"] == 90 and rows["png"]["container"] == "png"
    assert rows["video"]["codec"] == "h264"  # what Pillow cannot read, ffprobe names
    assert all(r["sha256"] and r["bytes"] for r in rows.values())
    samples = list(
        wds.WebDataset(
            str(out / "train" / "{00000..00001}.tar"), shardshuffle=False, empty_check=False
        ).decode("pil")
    )
    by_id = {s["json"]["clip_id"]: s for s in samples}
    assert sorted(by_id) == ["big", "png", "rot", "small"]
    assert by_id["big"]["jpg"].size == (341, 256) and by_id["rot"]["jpg"].size == (80, 120)
    assert (
        by_id["small"]["jpg"].size == (96, 64)
        and by_id["small"]["txt"] == "A patchwork of coloured squares"
    )
    with tarfile.open(out / "train" / "00000.tar") as tf:
        names = tf.getnames()
        first = tf.extractfile(names[0].split(".")[0] + ".jpg").read()
    assert all(n.rsplit(".", 1)[1] in ("jpg", "txt", "json") for n in names)
    assert Image.open(io.BytesIO(first)).format == "JPEG"
    small_bytes = next(s for s in samples if s["json"]["clip_id"] == "small")
    assert small_bytes["json"]["sha256"] == rows["small"]["sha256"]  # copied byte for byte
    sample_rows = pq.read_table(out / "train" / "00000.parquet").to_pylist()
    assert all(r["ext"] == "jpg" and r["media_kind"] == "image" for r in sample_rows)


def test_report_histograms_of_an_image_run_draw_without_warnings() -> None:
    """Images have no duration: the legend goes on the first panel with bars, silently."""
    import base64
    import warnings

    from webvid.shards import report

    rows = [
        {"kept": i % 3 > 0, "short_side": 100 + i, "caption_words": 5 + i % 4, "duration_s": None}
        for i in range(12)
    ]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        png = base64.b64decode(report._histograms_png(rows))
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
