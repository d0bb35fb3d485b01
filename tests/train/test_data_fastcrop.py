"""The vectorised training crop (torch uint8 resize) against a plain PIL crop + resize."""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch
from PIL import Image

from webvid.train import frames as fr
from webvid.train import synth
from webvid.train.data import ClipOptions, clips_to_batch, decode_clip


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
        got = fr.crop_frames_fast(frames, box, size, flip).astype(int)
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
        got = fr.crop_frames_fast(frames, box, 48, True).astype(int)
        ref = fr.crop_frames(frames, box, 48, True).astype(int)
        assert np.abs(got - ref)[:, 2:-2, 2:-2].max() <= 2
        assert np.abs(got - ref).mean() < 0.5


def test_fast_crop_flip_mirrors_and_identity_box_is_exact():
    frames = _noise_frames(2, 64, 64, seed=1)
    box = (0, 0, 64, 64)
    same = fr.crop_frames_fast(frames, box, 64, False)
    assert np.array_equal(same, np.stack([np.asarray(f) for f in frames]))
    assert np.array_equal(fr.crop_frames_fast(frames, box, 64, True), same[:, :, ::-1])


def test_scratch_buffer_reuse_never_changes_an_earlier_result():
    a, b = _noise_frames(seed=2), _noise_frames(seed=3)
    out_a = fr.crop_frames_fast(a, (10, 5, 110, 85), 32, False)
    keep = out_a.copy()
    fr.crop_frames_fast(b, (0, 0, 140, 90), 32, False)
    assert np.array_equal(out_a, keep)


def test_repeated_frames_and_bad_inputs():
    frames = _noise_frames(2, seed=4)
    rep = [frames[0], frames[0], frames[1], frames[1]]  # a short clip: frames repeat
    got = fr.crop_frames_fast(rep, (3, 4, 100, 80), 40, False)
    assert np.array_equal(got[0], got[1]) and np.array_equal(got[2], got[3])
    assert not np.array_equal(got[0], got[2])
    with pytest.raises(fr.BrokenSample, match="frame_size_mismatch"):
        fr.crop_frames_fast([frames[0], frames[0].resize((70, 45))], (0, 0, 60, 40), 32, False)
    with pytest.raises(ValueError, match="integer box"):
        fr.crop_frames_fast(frames, (0.5, 0, 60, 40), 32, False)
    with pytest.raises(ValueError, match="outside"):
        fr.crop_frames_fast(frames, (0, 0, 141, 90), 32, False)


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
