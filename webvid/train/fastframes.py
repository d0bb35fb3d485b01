"""Moved to :mod:`webvid.clips.fastframes`; this alias keeps old imports working."""

from webvid.clips.fastframes import (
    crop_frames_fast,
    decode_jpegs_array,
    direct_jpeg_size,
    frames_array,
)

__all__ = [
    "crop_frames_fast",
    "decode_jpegs_array",
    "direct_jpeg_size",
    "frames_array",
]
