"""Media sniffing is structural: real clips and images pass, text that merely has ``free`` or
``ftyp`` at offset 4, HTML, and malformed ISO-BMFF boxes do not; archives are recognised.

Real media are made once per session with ffmpeg (a few KB each); hostile bodies are built
in memory. The crawler's ``webvid.crawl.media.sniff`` must give the same answers as the shared
``webvid.sniff``, since it is the check that decides what a crawl stores.
"""

from __future__ import annotations

import bz2
import gzip
import io
import lzma
import subprocess
import tarfile
import zipfile
from pathlib import Path

import pytest

from webvid import sniff
from webvid.crawl import media

LAVFI = ["-f", "lavfi", "-i", "testsrc=s=64x48:r=10:d=0.5"]
STILL = ["-f", "lavfi", "-i", "testsrc=s=64x48:r=1:d=1", "-frames:v", "1"]
REAL = {  # file name → (ffmpeg arguments, expected (kind, ext))
    "clip.mp4": ([*LAVFI, "-c:v", "libx264", "-pix_fmt", "yuv420p"], ("video", "mp4")),
    "fast.mp4": (
        [*LAVFI, "-c:v", "libx264", "-pix_fmt", "yuv420p", "-movflags", "+faststart"],
        ("video", "mp4"),
    ),
    "clip.mov": ([*LAVFI, "-c:v", "libx264", "-pix_fmt", "yuv420p"], ("video", "mov")),
    "clip.m4v": ([*LAVFI, "-c:v", "libx264", "-pix_fmt", "yuv420p"], ("video", "mp4")),
    "clip.webm": ([*LAVFI, "-c:v", "libvpx", "-b:v", "100k"], ("video", "webm")),
    "clip.mkv": ([*LAVFI, "-c:v", "libx264", "-pix_fmt", "yuv420p"], ("video", "webm")),
    "clip.ts": ([*LAVFI, "-c:v", "mpeg2video", "-f", "mpegts"], ("video", "ts")),
    "clip.avi": ([*LAVFI, "-c:v", "mpeg2video"], ("video", "avi")),
    "clip.flv": ([*LAVFI, "-c:v", "flv"], ("video", "flv")),
    "pic.jpg": (STILL, ("image", "jpg")),
    "pic.png": (STILL, ("image", "png")),
    "pic.gif": (STILL, ("image", "gif")),
    "pic.webp": ([*STILL, "-c:v", "libwebp_anim"], ("image", "webp")),
}


def _ffmpeg(args: list[str], out: Path) -> Path:
    cmd = ["ffmpeg", "-nostdin", "-y", "-hide_banner", "-v", "error", *args, str(out)]
    subprocess.run(cmd, check=True, capture_output=True, timeout=60)
    return out


def _strip_ftyp(data: bytes) -> bytes:
    """A QuickTime file as old cameras wrote it: the same boxes without the leading ``ftyp``."""
    assert data[4:8] == b"ftyp"
    return data[int.from_bytes(data[:4], "big") :]


@pytest.fixture(scope="session")
def real_media(tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    d = tmp_path_factory.mktemp("sniff-media")
    files = {name: _ffmpeg(args, d / name).read_bytes() for name, (args, _) in REAL.items()}
    files["noftyp.mov"] = _strip_ftyp(files["clip.mov"])
    files["noftyp-fast.mov"] = _strip_ftyp(files["fast.mp4"])
    return files


EXPECTED = {name: kind_ext for name, (_, kind_ext) in REAL.items()}
EXPECTED |= {"noftyp.mov": ("video", "mp4"), "noftyp-fast.mov": ("video", "mp4")}


@pytest.mark.timeout(120)
@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_real_media_is_recognised(real_media: dict[str, bytes], name: str) -> None:
    data = real_media[name]
    head = data[: media.SNIFF_BYTES]
    assert sniff.media_type(head) == EXPECTED[name]
    assert sniff.media_type(head, len(data)) == EXPECTED[name]
    assert sniff.media_type(data, len(data)) == EXPECTED[name]
    assert media.sniff(head) == EXPECTED[name]  # the crawler's check is the shared one
    assert sniff.looks_like_media(head, len(data))
    assert sniff.archive_kind(data[: sniff.HEAD_BYTES]) is None


@pytest.mark.timeout(120)
@pytest.mark.parametrize("name", ["clip.mp4", "fast.mp4", "clip.mov", "clip.m4v", "noftyp.mov"])
def test_whole_file_box_walk_covers_the_file(real_media: dict[str, bytes], name: str) -> None:
    data = real_media[name]
    boxes = sniff.isobmff_boxes(data, len(data))
    assert boxes is not None
    assert sum(b.size or 0 for b in boxes) == len(data)
    assert {b.type for b in boxes} >= {b"moov", b"mdat"}


FTYP = b"\x00\x00\x00\x18ftypisom\x00\x00\x02\x00isomiso2"


def _box(kind: bytes, payload: bytes = b"", size: int | None = None) -> bytes:
    return (len(payload) + 8 if size is None else size).to_bytes(4, "big") + kind + payload


HOSTILE = {
    # text that only *looks* like an MP4 at offset 4 (the bug: this passed as video/mp4)
    "text_free_at_4": b"Get free stock footage today, no signup needed!\n" * 8,
    "text_ftyp_at_4": b"The ftypisom brand is the usual one for MP4 files.\n" * 8,
    "text_moov_at_4": b"Ok, moov over: this is a plain text file.\n" * 8,
    "text_mdat_at_4": b"Raw mdat is where the frames live, says the doc.\n" * 8,
    "text_wide_at_4": b"The wide angle shot is next.\n" * 8,
    "html": b"<!DOCTYPE html><html><head><title>404</title></head><body>gone</body></html>",
    "html_free": b"<p> free video downloads </p>" * 10,
    "json": b'{"ftyp": "isom", "free": true}' * 8,
    "text_bmx": b"BMX riders jump over a ramp in a skate park.\n" * 8,
    "text_ts_sync": b"G" + b"x" * 187 + b"G" + b"y" * 60,
    # malformed ISO-BMFF
    "ftyp_zero_size": b"\x00\x00\x00\x00ftypisom\x00\x00\x02\x00isomiso2"
    + _box(b"mdat", b"x" * 64),
    "ftyp_size_7": b"\x00\x00\x00\x07ftypisom" + b"\x00" * 40,
    "ftyp_64bit": b"\x00\x00\x00\x01ftyp" + (32).to_bytes(8, "big") + b"isom" + b"\x00" * 60,
    "ftyp_huge": b"\x00\x10\x00\x00ftypisom\x00\x00\x02\x00" + b"isom" * 40,
    "ftyp_odd_size": b"\x00\x00\x00\x19ftypisom\x00\x00\x02\x00isomiso2X" + _box(b"mdat", b"x"),
    "ftyp_binary_brand": b"\x00\x00\x00\x18ftyp\x00\x01\x02\x03\x00\x00\x02\x00isomiso2",
    "ftyp_bad_compat": b"\x00\x00\x00\x18ftypisom\x00\x00\x02\x00is\x00\x01iso2",
    "next_box_size_4": FTYP + b"\x00\x00\x00\x04mdat" + b"\x00" * 40,
    "next_box_binary_type": FTYP + b"\x00\x00\x01\x00\x8f\x01\x02\x03" + b"\x00" * 40,
    "next_box_zero_then_junk": FTYP + b"\x00\x00\x00\x00" + b"\x00" * 40,
    "free_text_size": b"junkfree" + b"\x00" * 60,
    "moov_bad_child": _box(b"moov", b"\x00\x00\x00\x10zzzz" + b"\x00" * 8),
    "moov_child_too_big": _box(b"moov", b"\x00\x00\x10\x00mvhd" + b"\x00" * 8),
    "wide_to_end": b"\x00\x00\x00\x00wide" + b"\x00" * 40,
    "only_4_bytes_of_box": b"\x00\x00",
}
#: Bodies malformed only against their known length: a box that runs past the end.
TRUNCATED = {
    "ftyp_cut": FTYP[:16],
    "mdat_past_end": FTYP + _box(b"mdat", b"\x00" * 40, size=4096),
    "ftyp_past_end": FTYP[:20],
}


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_hostile_bodies_are_not_media(name: str) -> None:
    body = HOSTILE[name]
    for total in (None, len(body)):
        assert sniff.media_type(body[: media.SNIFF_BYTES], total) is None, (name, total)
    assert media.sniff(body[: media.SNIFF_BYTES]) is None
    assert not sniff.looks_like_media(body)


@pytest.mark.parametrize("name", sorted(TRUNCATED))
def test_boxes_past_the_known_end_are_not_media(name: str) -> None:
    body = TRUNCATED[name]
    assert sniff.media_type(body, len(body)) is None
    assert media.sniff(body, len(body)) is None


def test_a_cut_real_clip_is_refused_only_when_its_length_is_known(
    real_media: dict[str, bytes],
) -> None:
    data = real_media["fast.mp4"]
    cut = data[:150]  # ftyp complete, moov header seen, moov itself cut off
    assert sniff.media_type(cut) == ("video", "mp4")  # the head of a longer body: fine
    assert sniff.media_type(cut, len(cut)) is None  # the whole body: moov runs past its end
    assert sniff.looks_like_isobmff(cut)  # what probe uses to call a cut file "truncated"


def _zip() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("clip.mp4", b"\x00" * 10_000)
    return buf.getvalue()


def _tar() -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        info = tarfile.TarInfo("clip.mp4")
        info.size = 100
        tf.addfile(info, io.BytesIO(b"\x00" * 100))
    return buf.getvalue()


ARCHIVES = {
    "gzip": lambda: gzip.compress(b"\x00" * 100_000),
    "bzip2": lambda: bz2.compress(b"\x00" * 100_000),
    "xz": lambda: lzma.compress(b"\x00" * 100_000),
    "zip": _zip,
    "tar": _tar,
    "zstd": lambda: b"\x28\xb5\x2f\xfd\x04\x58" + b"\x00" * 64,
    "lz4": lambda: b"\x04\x22\x4d\x18\x64\x40\xa7" + b"\x00" * 64,
    "7z": lambda: b"7z\xbc\xaf\x27\x1c\x00\x04" + b"\x00" * 64,
    "rar": lambda: b"Rar!\x1a\x07\x01\x00" + b"\x00" * 64,
}


@pytest.mark.parametrize("kind", sorted(ARCHIVES))
def test_archives_are_recognised_and_are_not_media(kind: str) -> None:
    data = ARCHIVES[kind]()
    head = data[: sniff.HEAD_BYTES]
    assert sniff.archive_kind(head) == kind
    assert sniff.media_type(head[: media.SNIFF_BYTES]) is None
    assert not sniff.looks_like_media(head)
