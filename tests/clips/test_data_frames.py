"""Frame choice, decoding and crops on real generated clips (ffmpeg, PIL)."""

from __future__ import annotations

import random

import numpy as np
import pytest

from webvid.clips import frames as fr
from webvid.synth import shards as synth


def test_uniform_is_the_official_midpoints():
    assert fr.sample_indices(4, 300, "uniform") == [37, 112, 187, 262]


def test_rand_stays_in_segments_and_reaches_their_last_frame():
    rng = random.Random(0)
    draws = [fr.sample_indices(4, 8, "rand", rng) for _ in range(400)]
    for d in draws:
        assert [i // 2 for i in d] == [0, 1, 2, 3]
    # the official code can never draw a segment's last frame (1, 3, 5, 7): we can
    assert {d[0] for d in draws} == {0, 1}
    assert {d[3] for d in draws} == {6, 7}


@pytest.mark.parametrize("vlen", [4, 5])
def test_one_frame_segments_do_not_crash(vlen):
    # the official rand sampler raises IndexError here and lax loading makes a black clip
    out = fr.sample_indices(4, vlen, "rand", random.Random(1))
    assert len(out) == 4 and out == sorted(out) and len(set(out)) == 4


def test_short_clip_repeats_frames_instead_of_black_padding():
    assert fr.sample_indices(4, 2, "uniform") == [0, 0, 1, 1]
    assert fr.sample_indices(4, 1, "rand", random.Random(0)) == [0, 0, 0, 0]


def test_fix_start_offsets_are_clamped_to_the_segment():
    assert fr.sample_indices(4, 16, "fix_start", offset=1) == [1, 5, 9, 13]
    assert fr.sample_indices(4, 16, "fix_start", offset=9) == [3, 7, 11, 15]


def _centroid_x(frame: np.ndarray) -> float:
    mask = frame.astype(int).sum(-1) > 300  # the white shape on black
    return float(np.nonzero(mask)[1].mean())


def test_decoded_video_frames_are_the_chosen_ones():
    spec = synth.ClipSpec("white", "square", "right", "black")
    arr = synth.render(spec, 64, 48, 16)
    data = synth.encode_mp4(arr)
    out = fr.decode_video(data, 4, "uniform", None, short_side=0)
    assert out.shape == (4, 48, 64, 3)
    idx = fr.sample_indices(4, 16, "uniform")
    for got, t in zip(out, idx, strict=True):
        assert abs(_centroid_x(got) - _centroid_x(arr[t])) < 1.0
    # the shape moves right, frame after frame
    xs = [_centroid_x(f) for f in out]
    assert xs == sorted(xs) and xs[-1] - xs[0] > 20
    # same answer when the frame count comes from the sample's JSON instead of ffprobe
    meta = {"num_frames": 16, "width": 64, "height": 48}
    again = fr.decode_video(data, 4, "uniform", None, 0, meta)
    assert np.array_equal(out, again)


def test_decode_scales_the_short_side_down():
    arr = synth.render(synth.ClipSpec("red", "circle", "left", "grey"), 96, 64, 8)
    out = fr.decode_video(synth.encode_mp4(arr), 2, "uniform", None, short_side=32)
    assert out.shape == (2, 32, 48, 3)


@pytest.mark.parametrize(
    "data,reason", [(b"", "empty_media"), (b"not a video at all" * 50, "undecodable")]
)
def test_bad_video_bytes_raise_broken_sample(data, reason):
    with pytest.raises(fr.BrokenSample) as ei:
        fr.decode_video(data, 4, "uniform", None, 0)
    assert ei.value.reason == reason


def test_truncated_video_is_broken_not_black():
    arr = synth.render(synth.ClipSpec("red", "circle", "left", "grey"), 64, 48, 16)
    data = synth.encode_mp4(arr)
    # header claims 16 frames; the body is cut
    with pytest.raises(fr.BrokenSample):
        fr.decode_video(
            data[: len(data) // 3],
            4,
            "uniform",
            None,
            0,
            {"num_frames": 16, "width": 64, "height": 48},
        )


def test_random_resized_crop_box_obeys_scale_and_ratio():
    rng = random.Random(3)
    for _ in range(300):
        x0, y0, x1, y1 = fr.random_resized_crop_box(200, 100, (0.5, 1.0), (0.75, 4 / 3), rng)
        w, h = x1 - x0, y1 - y0
        assert x0 >= 0 and x1 <= 200 and y0 >= 0 and y1 <= 100
        assert 0.5 * 20000 * 0.95 <= w * h <= 20000
        assert 0.74 <= w / h <= 1.34 or (w, h) == (133, 100)


def test_one_crop_and_flip_for_all_frames():
    arr = synth.render(synth.ClipSpec("white", "square", "right", "black"), 64, 48, 4)
    out = fr.crop_frames(arr, fr.center_box(64, 48), 24, flip=True)
    ref = fr.crop_frames(arr, fr.center_box(64, 48), 24, flip=False)
    assert out.shape == (4, 24, 24, 3)
    assert np.array_equal(out, ref[:, :, ::-1])


def test_pre_extracted_frames_follow_the_same_policy():
    arr = synth.render(synth.ClipSpec("white", "square", "right", "black"), 64, 48, 16)
    sample = {f"frame{k:02d}.jpg": synth.jpeg(arr[t]) for k, t in enumerate(synth.midpoints(16, 8))}
    sample["frame10.jpg"] = sample.pop("frame07.jpg")  # order is numeric, not positional
    assert fr.frame_members(sample)[-1] == "frame10.jpg"
    out = fr.decode_jpegs(sample, 4, "uniform", None, 0)
    xs = [_centroid_x(np.asarray(f)) for f in out]
    assert xs == sorted(xs) and len(out) == 4
