"""The vectorised training crop (torch uint8 resize) against a plain PIL crop + resize."""

from __future__ import annotations

import io
import random

import numpy as np
import pytest
import torch
from PIL import Image

from webvid.clips import fastframes as ff
from webvid.clips import frames as fr
from webvid.clips.sample import ClipOptions, decode_clip
from webvid.synth import shards as synth
from webvid.train.data import clips_to_batch


def _noise_frames(n: int = 4, w: int = 140, h: int = 90, seed: int = 0) -> list[Image.Image]:
    """Worst case for resampling differences: independent random pixels."""
    rng = np.random.default_rng(seed)
    return [Image.fromarray(a) for a in rng.integers(0, 256, (n, h, w, 3), dtype=np.uint8)]


def _pil_reference(frames: list[Image.Image], box, size: int, flip: bool) -> np.ndarray:
    out = []
    for img in frames:
        r = img.crop(box).resize((size, size), Image.BILINEAR)
        out.append(np.asarray(r.transpose(Image.FLIP_LEFT_RIGHT) if flip else r))
    return np.stack(out)


@pytest.mark.parametrize("size", [224, 32])
def test_fast_crop_matches_pil_crop_then_resize(size):
    frames = _noise_frames()
    rng = random.Random(size)
    worst, means = 0, []
    for k in range(30):
        box = fr.random_resized_crop_box(140, 90, (0.5, 1.0), (0.75, 4 / 3), rng)
        flip = k % 2 == 1
        got = ff.crop_frames_fast(frames, box, size, flip).astype(int)
        ref = _pil_reference(frames, box, size, flip).astype(int)
        assert got.shape == (4, size, size, 3)
        d = np.abs(got - ref)
        worst, means = max(worst, int(d.max())), [*means, float(d.mean())]
    # upsampling (224) and downsampling (32) with antialias: rounding-level differences only
    assert worst <= 2
    assert max(means) < 0.5


def test_fast_crop_matches_the_pil_box_resize_away_from_the_border():
    # crop_frames (PIL resize(box=...)) lets the filter read just outside the box; the fast
    # crop clamps at the box edge like a crop then resize: only the outer pixels may differ
    arr = synth.render(synth.ClipSpec("white", "square", "right", "black"), 160, 96, 4)
    frames = [Image.fromarray(a) for a in arr]
    rng = random.Random(7)
    for _ in range(20):
        box = fr.random_resized_crop_box(160, 96, (0.5, 1.0), (0.75, 4 / 3), rng)
        got = ff.crop_frames_fast(frames, box, 48, True).astype(int)
        ref = fr.crop_frames(frames, box, 48, True).astype(int)
        assert np.abs(got - ref)[:, 2:-2, 2:-2].max() <= 2
        assert np.abs(got - ref).mean() < 0.5


def test_fast_crop_flip_mirrors_and_identity_box_is_exact():
    frames = _noise_frames(2, 64, 64, seed=1)
    box = (0, 0, 64, 64)
    same = ff.crop_frames_fast(frames, box, 64, False)
    assert np.array_equal(same, np.stack([np.asarray(f) for f in frames]))
    assert np.array_equal(ff.crop_frames_fast(frames, box, 64, True), same[:, :, ::-1])


def test_scratch_buffer_reuse_never_changes_an_earlier_result():
    a, b = _noise_frames(seed=2), _noise_frames(seed=3)
    out_a = ff.crop_frames_fast(a, (10, 5, 110, 85), 32, False)
    keep = out_a.copy()
    ff.crop_frames_fast(b, (0, 0, 140, 90), 32, False)
    assert np.array_equal(out_a, keep)


def test_repeated_frames_and_bad_inputs():
    frames = _noise_frames(2, seed=4)
    rep = [frames[0], frames[0], frames[1], frames[1]]  # a short clip: frames repeat
    got = ff.crop_frames_fast(rep, (3, 4, 100, 80), 40, False)
    assert np.array_equal(got[0], got[1]) and np.array_equal(got[2], got[3])
    assert not np.array_equal(got[0], got[2])
    with pytest.raises(fr.BrokenSample, match="frame_size_mismatch"):
        ff.crop_frames_fast([frames[0], frames[0].resize((70, 45))], (0, 0, 60, 40), 32, False)
    with pytest.raises(ValueError, match="integer box"):
        ff.crop_frames_fast(frames, (0.5, 0, 60, 40), 32, False)
    with pytest.raises(ValueError, match="outside"):
        ff.crop_frames_fast(frames, (0, 0, 141, 90), 32, False)


def _pre_extracted_sample(seed: int = 0) -> dict:
    arr = synth.render(synth.ClipSpec("red", "circle", "left", "grey"), 120, 68, 16)
    noise = np.random.default_rng(seed).integers(0, 40, arr.shape, dtype=np.uint8)
    arr = np.clip(arr.astype(int) + noise, 0, 255).astype(np.uint8)
    sample = {f"frame{k:02d}.jpg": synth.jpeg(arr[t]) for k, t in enumerate(synth.midpoints(16, 8))}
    return {"__key__": "k", "txt": b"a red circle", **sample}


def test_training_clip_of_pre_extracted_frames_is_the_reference_crop():
    """decode_clip (train) = the same frame choice, box and flip as a plain PIL path."""
    sample = _pre_extracted_sample()
    opts = ClipOptions(size=56, short_side=0)
    for seed in range(6):
        got = decode_clip(sample, "video", 4, "rand", opts, random.Random(seed))
        # replay the same draws by hand: frames, then box, then flip
        rng = random.Random(seed)
        frames = fr.decode_jpegs(sample, 4, "rand", rng, 0)
        box = fr.random_resized_crop_box(120, 68, opts.scale, opts.ratio, rng)
        flip = rng.random() < 0.5
        ref = _pil_reference(frames, box, 56, flip).astype(int)
        assert np.abs(got.astype(int) - ref).max() <= 2
        # deterministic: the same seed gives the same clip, bit for bit
        again = decode_clip(sample, "video", 4, "rand", opts, random.Random(seed))
        assert np.array_equal(got, again)


def test_clips_to_batch_is_contiguous_channel_first():
    clips = [
        np.random.default_rng(i).integers(0, 256, (4, 8, 8, 3), dtype=np.uint8) for i in range(3)
    ]
    clips[1] = clips[1][:, :, ::-1]  # a strided (mirrored) view is fine too
    batch = clips_to_batch(clips)
    assert batch.shape == (3, 4, 3, 8, 8) and batch.dtype == torch.uint8 and batch.is_contiguous()
    ref = torch.from_numpy(np.stack(clips)).permute(0, 1, 4, 2, 3)
    assert torch.equal(batch, ref)


def _jpeg(arr: np.ndarray, mode: str = "RGB", **kw) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(arr).convert(mode).save(buf, format="JPEG", **kw)
    return buf.getvalue()


def _textured(n: int, w: int, h: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    base = synth.render(synth.ClipSpec("blue", "square", "up", "black"), w, h, n)
    return np.clip(base.astype(int) + rng.integers(-30, 30, base.shape), 0, 255).astype(np.uint8)


@pytest.mark.parametrize(
    ("fmt", "direct"),
    [
        ({"quality": 90}, True),  # 4:2:0, the common case
        ({"quality": 95, "subsampling": 0}, True),  # 4:4:4
        ({"quality": 80, "mode": "L"}, True),  # grey: replicated to RGB like Pillow
        ({"quality": 90, "mode": "CMYK"}, False),  # Pillow's own CMYK conversion
        ({"quality": 90, "progressive": True}, True),
    ],
)
def test_direct_jpeg_decode_is_bit_identical_to_pillow(fmt, direct):
    arr = _textured(16, 96, 64)
    fmt = dict(fmt)
    mode = fmt.pop("mode", "RGB")
    sample = {
        f"frame{k:02d}.jpg": _jpeg(arr[t], mode, **fmt) for k, t in enumerate(range(0, 16, 2))
    }
    assert (ff.direct_jpeg_size(sample["frame00.jpg"], 256) is not None) == direct
    for seed in range(4):
        r1, r2 = random.Random(seed), random.Random(seed)
        got = ff.decode_jpegs_array(sample, 4, "rand", r1, 256)
        ref = np.stack([np.asarray(f) for f in fr.decode_jpegs(sample, 4, "rand", r2, 256)])
        assert got.shape == ref.shape == (4, 64, 96, 3)
        assert np.array_equal(got, ref)
        assert r1.random() == r2.random()  # the same draws were consumed


def test_frames_pillow_would_draft_scale_take_pillows_path():
    arr = _textured(4, 640, 400)
    sample = {f"f{k:02d}.jpg": _jpeg(arr[k], quality=90) for k in range(4)}
    assert ff.direct_jpeg_size(sample["f00.jpg"], 128) is None  # draft to 1/2 by Pillow
    assert ff.direct_jpeg_size(sample["f00.jpg"], 256) == (640, 400)  # no draft: direct
    for short in (128, 256, 0):
        got = ff.decode_jpegs_array(sample, 4, "uniform", None, short)
        ref = np.stack([np.asarray(f) for f in fr.decode_jpegs(sample, 4, "uniform", None, short)])
        assert np.array_equal(got, ref)


def test_mixed_members_short_clips_and_broken_frames():
    arr = _textured(4, 64, 48)
    png = io.BytesIO()
    Image.fromarray(arr[1]).save(png, format="PNG")
    sample = {"f00.jpg": _jpeg(arr[0]), "f01.png": png.getvalue()}
    got = ff.decode_jpegs_array(sample, 4, "uniform", None, 0)  # 2 frames for 4: repeats
    ref = np.stack([np.asarray(f) for f in fr.decode_jpegs(sample, 4, "uniform", None, 0)])
    assert np.array_equal(got, ref)
    assert np.array_equal(got[2], arr[1])  # the PNG frame, lossless
    odd = dict(sample, **{"f01.png": _jpeg(arr[1][:40])})
    with pytest.raises(fr.BrokenSample, match="frame_size_mismatch"):
        ff.decode_jpegs_array(odd, 2, "uniform", None, 0)
    truncated = dict(sample, **{"f01.png": _jpeg(arr[1])[:300]})
    with pytest.raises(fr.BrokenSample) as direct_err:
        ff.decode_jpegs_array(truncated, 2, "uniform", None, 0)
    with pytest.raises(fr.BrokenSample) as pil_err:
        fr.decode_jpegs(truncated, 2, "uniform", None, 0)
    assert direct_err.value.reason == pil_err.value.reason == "undecodable"
    with pytest.raises(fr.BrokenSample, match="empty_media"):
        ff.decode_jpegs_array({"f00.jpg": b""}, 1, "uniform", None, 0)
    with pytest.raises(fr.BrokenSample, match="no_frames"):
        ff.decode_jpegs_array({"jpg": _jpeg(arr[0])}, 1, "uniform", None, 0)


def test_segment_bounds_are_numpys_linspace_bit_for_bit():
    # sample_indices computes the official np.linspace segment bounds in pure Python
    for n in (1, 2, 3, 4, 7, 8, 16, 32):
        for vlen in range(n, 3000, 7):
            want = np.linspace(0, vlen, n + 1).astype(int).tolist()
            assert fr.sample_indices(n, vlen, "fix_start", offset=0) == want[:-1]
            mids = [(s + e - 1) // 2 for s, e in zip(want[:-1], want[1:], strict=True)]
            assert fr.sample_indices(n, vlen, "uniform") == mids
