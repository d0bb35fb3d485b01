"""Curation policy: which reasons reject a clip, from its facts and scores (pure, no I/O).

Takes probe facts, caption facts and frame scores (plain values) plus the recipe's
:class:`~webvid.shards.recipe.FilterConfig`; produces lists of reason codes from
``contract.VERDICT_REASONS``. Every check runs, so ``reasons`` lists every filter a clip
fails; ``reason`` (the first, in ``VERDICT_REASONS`` order) is the one the funnel counts.
Tested as tables in ``tests/shards/test_shards_filters.py``.
"""

from __future__ import annotations

from collections.abc import Iterable

from webvid.contract import VERDICT_REASONS
from webvid.shards.recipe import FilterConfig

_ORDER = {r: i for i, r in enumerate(VERDICT_REASONS)}

#: Reasons after which a file is not decoded at all.
HARD_REASONS = frozenset(
    {
        "missing_media",
        "empty_file",
        "not_media",
        "not_video",
        "not_image",
        "undecodable",
        "truncated",
        "too_large",
    }
)


def ordered(reasons: Iterable[str]) -> list[str]:
    """Unique reasons in the canonical order (the first one is the verdict's ``reason``)."""
    unknown = set(reasons) - set(_ORDER)
    if unknown:
        raise ValueError(f"unknown verdict reasons: {sorted(unknown)}")
    return sorted(set(reasons), key=_ORDER.__getitem__)


def _outside(value: float | None, low: float | None, high: float | None) -> tuple[bool, bool]:
    if value is None:
        return False, False
    return (low is not None and value < low), (high is not None and value > high)


def media_reasons(
    *,
    media_kind: str,
    has_video: bool,
    is_image: bool,
    width: int | None,
    height: int | None,
    fps: float | None,
    duration_s: float | None,
    cfg: FilterConfig,
) -> list[str]:
    """Checks on the probed facts, before any decoding."""
    if media_kind == "video" and (is_image or not has_video):
        return ["not_video"]
    if media_kind == "image" and (not is_image or not has_video):
        return ["not_image"]
    out: list[str] = []
    if width and height and width * height > cfg.max_frame_area:
        return ["too_large"]
    if not width or not height:
        return ["undecodable"]
    short = min(width, height)
    if cfg.min_short_side is not None and short < cfg.min_short_side:
        out.append("too_small")
    low, high = _outside(width / height, cfg.min_aspect_ratio, cfg.max_aspect_ratio)
    if low or high:
        out.append("aspect_ratio")
    if media_kind == "video":
        if duration_s is None or duration_s <= 0:
            out.append("duration_too_short")
        else:
            low, high = _outside(duration_s, cfg.min_duration_s, cfg.max_duration_s)
            if low:
                out.append("duration_too_short")
            if high:
                out.append("duration_too_long")
        low, high = _outside(fps, cfg.min_fps, cfg.max_fps)
        if low or high:
            out.append("fps_out_of_range")
    return out


def caption_reasons(
    *,
    words: int,
    lang: str | None,
    lang_score: float | None,
    repeats: int,
    cfg: FilterConfig,
) -> list[str]:
    """Checks on the clean caption: length, language, templated (shared by too many clips)."""
    out: list[str] = []
    low, high = _outside(words, cfg.min_caption_words, cfg.max_caption_words)
    if low:
        out.append("caption_too_short")
    if high:
        out.append("caption_too_long")
    if (
        cfg.languages
        and lang is not None
        and lang not in cfg.languages
        and (lang_score or 0.0) >= cfg.min_language_confidence
    ):
        out.append("caption_language")
    if cfg.max_caption_repeats is not None and repeats > cfg.max_caption_repeats:
        out.append("caption_templated")
    return out


def score_reasons(
    *,
    motion_score: float | None,
    black_fraction: float | None,
    scene_cuts: int | None,
    cfg: FilterConfig,
) -> list[str]:
    """Checks on the decoded frames: still, black or blank, scene cuts (when the policy rejects)."""
    out: list[str] = []
    if (
        cfg.max_black_fraction is not None
        and black_fraction is not None
        and black_fraction > cfg.max_black_fraction
    ):
        out.append("black")
    if cfg.min_motion is not None and motion_score is not None and motion_score < cfg.min_motion:
        out.append("still")
    if cfg.scene_cut == "reject" and scene_cuts:
        out.append("scene_cut")
    return out


def model_reasons(
    *, caption_agreement: float | None, caption_cosine: float | None, cfg: FilterConfig
) -> list[str]:
    """Checks on a clip's model scores (``webvid score``): caption–clip agreement and cosine.
    A clip without scores is not judged. ``max_per_semantic_cluster`` spans clips: see
    :func:`webvid.shards.modelscores.semantic_excess`."""
    low_agreement = (
        cfg.min_caption_agreement is not None
        and caption_agreement is not None
        and caption_agreement < cfg.min_caption_agreement
    )
    low_cosine = (
        cfg.min_caption_cosine is not None
        and caption_cosine is not None
        and caption_cosine < cfg.min_caption_cosine
    )
    return ["caption_mismatch"] if low_agreement or low_cosine else []


#: ffmpeg messages that mean the data stops before the container says it should.
_CUT_OFF_MARKS = (
    "partial file",
    "Invalid NAL unit size",
    "Error splitting the input",
    "error reading header",
    "End of file",
    "Truncating packet",
)


def decode_reason(*, returncode: int, frames: int, expected_frames: int, stderr: str) -> str | None:
    """Whether the analysis decode proved the clip decodes: None, ``truncated`` or ``undecodable``.

    ``expected_frames`` is what the probed duration promises at the analysis rate. A clip whose
    data ends before the container says (ffmpeg reports a partial file or cut NAL units), that
    fails part-way, or that decodes under half of what it promises with errors, is truncated.
    """
    cut_off = any(mark in stderr for mark in _CUT_OFF_MARKS)
    if frames == 0:
        return "truncated" if cut_off else "undecodable"
    if returncode != 0 or cut_off:
        return "truncated"
    if expected_frames >= 4 and frames < expected_frames // 2 and stderr.strip():
        return "truncated"
    return None
