"""What a response body is: content-type classes and magic-byte sniffing (pure, no I/O).

Takes a ``Content-Type`` header, the first bytes of a body, or a URL; produces a media kind
(``"video"`` / ``"image"``), a file extension, and whether the URL or response is something
yt-dlp should handle (an HTML player page or an HLS/DASH manifest) rather than a direct file.
"""

from __future__ import annotations

import functools
from urllib.parse import SplitResult, urlsplit

from webvid import sniff as sniffing

#: Bytes needed to recognise every container below (MPEG-TS needs its second sync byte).
SNIFF_BYTES = 192

MEDIA_EXTS = frozenset(
    {
        "mp4",
        "m4v",
        "mov",
        "webm",
        "mkv",
        "avi",
        "flv",
        "ts",
        "mpg",
        "mpeg",
        "ogv",
        "jpg",
        "jpeg",
        "png",
        "gif",
        "webp",
        "bmp",
        "avif",
    }
)
MANIFEST_EXTS = frozenset({"m3u8", "mpd"})
PAGE_EXTS = frozenset({"html", "htm", "php", "asp", "aspx", ""})

_GENERIC_BINARY = frozenset(
    {"application/octet-stream", "binary/octet-stream", "application/binary", "application/mp4"}
)
_MANIFEST_TYPES = frozenset(
    {
        "application/vnd.apple.mpegurl",
        "application/x-mpegurl",
        "audio/mpegurl",
        "audio/x-mpegurl",
        "application/dash+xml",
    }
)
_HTML_TYPES = frozenset({"text/html", "application/xhtml+xml"})


def mime_of(content_type: str | None) -> str:
    """``"video/MP4; codecs=..."`` → ``"video/mp4"``; missing → ``""``."""
    return (content_type or "").split(";", 1)[0].strip().lower()


def content_type_class(content_type: str | None) -> str:
    """One of ``media``, ``binary`` (generic, decide by magic), ``html``, ``manifest``,
    ``missing`` or ``other``."""
    mime = mime_of(content_type)
    if not mime:
        return "missing"
    if mime.startswith(("video/", "image/")):
        return "media"
    if mime in _GENERIC_BINARY:
        return "binary"
    if mime in _MANIFEST_TYPES:
        return "manifest"
    if mime in _HTML_TYPES:
        return "html"
    return "other"


def sniff(head: bytes, total_bytes: int | None = None) -> tuple[str, str] | None:
    """``(kind, ext)`` of a body from its first bytes, or None when it is not media we keep.

    ``head`` is the body's first :data:`SNIFF_BYTES` bytes (the whole body when shorter);
    ``total_bytes`` its length when known. The checks, structural for MP4/MOV, live in
    :func:`webvid.sniff.media_type`, shared with the shard stage.
    """
    return sniffing.media_type(head, total_bytes)


@functools.lru_cache(maxsize=8192)
def split_url(url: str) -> SplitResult:
    """``urlsplit`` with a small cache: each URL is looked at by several checks."""
    return urlsplit(url)


def url_ext(url: str) -> str:
    """Lower-case extension of a URL's path (no dot), ``""`` when none."""
    path = split_url(url).path
    name = path.rsplit("/", 1)[-1]
    return name.rsplit(".", 1)[-1].lower() if "." in name else ""


def route_for_url(url: str, via: str) -> str:
    """``direct`` or ``yt-dlp`` before any request: only ``--via`` and obvious URLs decide.

    ``auto`` sends manifests to yt-dlp and tries everything else directly first; a direct
    attempt that answers with an HTML page or a manifest is then handed to yt-dlp.
    """
    if via in ("direct", "yt-dlp"):
        return via
    return "yt-dlp" if url_ext(url) in MANIFEST_EXTS else "direct"


#: The ``media_kind`` of a record whose body was not kept and whose kind nothing tells.
UNKNOWN_KIND = "unknown"
VIDEO_EXTS = frozenset(
    {"mp4", "m4v", "mov", "webm", "mkv", "avi", "flv", "ts", "mpg", "mpeg", "ogv"}
)
IMAGE_EXTS = MEDIA_EXTS - VIDEO_EXTS


def kind_hint(url: str | None, content_type: str | None, *, has_duration: bool = False) -> str:
    """The ``media_kind`` of an item without a kept body (failed, skipped, dry run): the
    response's ``video/*`` or ``image/*`` type, else the URL's extension (a manifest is a
    video), else ``video`` when the source declared a duration, else :data:`UNKNOWN_KIND`."""
    mime = mime_of(content_type)
    for kind in ("video", "image"):
        if mime.startswith(f"{kind}/"):
            return kind
    try:
        ext = url_ext(url) if url else ""
    except ValueError:
        ext = ""
    if ext in VIDEO_EXTS or ext in MANIFEST_EXTS:
        return "video"
    if ext in IMAGE_EXTS:
        return "image"
    return "video" if has_duration else UNKNOWN_KIND
