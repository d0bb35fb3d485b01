"""Caption clean-up, language detection and templated-caption counting.

Takes raw stock-site captions (alt text, titles); produces clean captions, word counts, a
language code with a probability, and the number of inputs sharing each clean caption.

Clean-up removes what stock sites add around the description: clip ids, resolution and
frame-rate tags ("4K", "1080p", "60fps"), "stock footage" phrases, segments left holding only
boilerplate words ("- video", "| Download now", ", no watermark"), a trailing list of
keywords, HTML entities and repeated punctuation. The raw caption is kept by the caller.

Language detection is offline: py3langid ships its model inside the pip package. The model
(about 1 s to load) is loaded once per process, on first use.
"""

from __future__ import annotations

import html
import re
from collections import Counter
from collections.abc import Iterable
from functools import lru_cache

_RESOLUTION = r"(?:[48]k(?:\s*uhd)?|uhd|ultra\s*hd|full\s*hd|fhd|hd|qhd|\d{3,4}p|\d{2,3}\s*fps|hdr)"
_RESOLUTION_RE = re.compile(rf"(?:\b(?:in|at|shot\s+in)\s+)?\b{_RESOLUTION}\b", re.IGNORECASE)
_ID_RE = re.compile(
    r"(?:\b(?:id|clip|video|no|nr)\.?\s*[:#]?\s*|#)\d{4,}\b|\b\d{6,}\b", re.IGNORECASE
)
_REPEAT_PUNCT_RE = re.compile(r"([!?.,;:\-_*~|/])(?:\s*\1)+")
_SPACE_RE = re.compile(r"\s+")
_SPACE_BEFORE_PUNCT_RE = re.compile(r"\s+([,.;:!?])")
_EDGE_RE = re.compile(r"^[\s,.;:!?\-|/_*~]+|[\s,;:\-|/_*~]+$")
_DANGLING_RE = re.compile(r"\s*\b(?:in|at|of|with|and|or|the|a)\s*$", re.IGNORECASE)


# Separators stock sites put between a description and their boilerplate.
_SEGMENT_SPLIT_RE = re.compile(r"(\s+[-\u2013\u2014]\s+|\s*[|\u2022]\s*|\s*,\s*|(?<=[.!?])\s+)")
# Words of boilerplate left once ids, resolutions and stock phrases are gone ("- video",
# "| Download now", ", no watermark"): a segment made only of these is dropped.
_STOCK_WORDS = frozenset(
    [
        "video",
        "videos",
        "clip",
        "clips",
        "footage",
        "stock",
        "hd",
        "free",
        "royalty",
        "download",
        "now",
        "no",
        "watermark",
        "watermarks",
        "license",
        "licence",
        "licensed",
        "editorial",
        "use",
        "only",
        "preview",
        "buy",
        "premium",
        "high",
        "quality",
        "resolution",
        "uhd",
        "fps",
    ]
)


def _drop_stock_segments(text: str) -> str:
    """Drop separator-delimited segments that hold only boilerplate words (or nothing)."""
    parts = _SEGMENT_SPLIT_RE.split(text)
    out: list[str] = []
    for i in range(0, len(parts), 2):
        words = re.findall(r"[a-z0-9]+", parts[i].lower())
        if not words or all(w in _STOCK_WORDS for w in words):
            continue
        out.append((parts[i - 1] if out else "") + parts[i])
    return "".join(out)


def _is_keyword(part: str) -> bool:
    return bool(part) and len(part.split()) <= 2 and not part.endswith((".", "!", "?"))


def _drop_keyword_tail(text: str, min_run: int) -> str:
    """Drop a trailing comma list of ``>= min_run`` items of one or two words each."""
    sentence_end = max(text.rfind(". "), text.rfind("! "), text.rfind("? "))
    if sentence_end > 0:
        tail = [p.strip() for p in text[sentence_end + 2 :].split(",")]
        if len(tail) >= min_run and all(map(_is_keyword, tail)):
            return text[: sentence_end + 1]
    parts = [p.strip() for p in text.split(",")]
    if len(parts) <= min_run:
        return text
    run = 0
    for part in reversed(parts[1:]):
        if _is_keyword(part):
            run += 1
        else:
            break
    if run >= min_run:
        return ", ".join(parts[: len(parts) - run])
    return text


def clean_caption(
    raw: str | None, drop_phrases: Iterable[str] = (), min_keyword_run: int = 4
) -> str:
    """The descriptive part of a stock caption, tidied; "" when nothing is left."""
    if not raw:
        return ""
    text = html.unescape(str(raw)).replace("\u00a0", " ")
    text = _SPACE_RE.sub(" ", text).strip().strip("\"'“”‘’").strip()
    for phrase in sorted(drop_phrases, key=len, reverse=True):
        text = re.sub(rf"\b{re.escape(phrase)}\b", " ", text, flags=re.IGNORECASE)
    text = _ID_RE.sub(" ", text)
    text = _RESOLUTION_RE.sub(" ", text)
    text = re.sub(r"\(\s*\)|\[\s*\]", " ", text)
    text = _drop_stock_segments(_SPACE_RE.sub(" ", text))
    text = _REPEAT_PUNCT_RE.sub(r"\1", text)
    text = _SPACE_RE.sub(" ", text)
    text = _SPACE_BEFORE_PUNCT_RE.sub(r"\1", text)
    text = _drop_keyword_tail(text, min_keyword_run)
    text = _EDGE_RE.sub("", text)
    previous = None
    while previous != text:
        previous = text
        text = _EDGE_RE.sub("", _DANGLING_RE.sub("", text))
    text = _REPEAT_PUNCT_RE.sub(r"\1", text)
    if text.count('"') % 2:
        text = text.replace('"', "")
    return text.strip().strip("\"'“”‘’").strip()


def word_count(text: str) -> int:
    return len(re.findall(r"\w+", text))


def template_key(text: str) -> str:
    """What counts as "the same caption" for the templated filter: case, spacing, punctuation."""
    return " ".join(re.findall(r"\w+", text.lower()))


def caption_counts(clean: Iterable[str]) -> Counter[str]:
    return Counter(k for k in map(template_key, clean) if k)


@lru_cache(maxsize=1)
def _identifier():  # type: ignore[no-untyped-def]
    from py3langid.langid import MODEL_DIR, MODEL_FILE, LanguageIdentifier

    return LanguageIdentifier.from_modelpath(MODEL_DIR / MODEL_FILE, norm_probs=True)


def detect_language(text: str) -> tuple[str | None, float | None]:
    """(ISO 639-1 code, probability) of ``text``; (None, None) for text without letters."""
    if not re.search(r"[^\W\d_]", text):
        return None, None
    lang, prob = _identifier().classify(text)
    return str(lang), round(float(prob), 4)
