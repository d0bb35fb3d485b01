"""What the first bytes of a file or body are: media containers, archives, text (pure, no I/O).

Takes the first bytes of a body or file (``head``) and, when known, its total length; produces

* :func:`media_type`: ``(kind, ext)`` of the media the crawler keeps (``("video", "mp4")``,
  ``("image", "jpg")``, ...) or None. ISO-BMFF (MP4, M4V, MOV, AVIF) is checked structurally,
  not by four bytes at offset 4: the top-level box headers seen in ``head`` must be well formed
  (size >= 8, or the 64-bit / "to the end" forms; a type of four letters, digits or spaces; no
  box past the known total length), the file must open with an ``ftyp`` box of a plausible size
  and brand, or with a QuickTime top-level atom (``moov``, ``mdat``, ``wide``, ``free``,
  ``skip``) whose size and first child are consistent, and text never passes;
* :func:`looks_like_media`: the same plus still-image formats that ffprobe reads but the crawler
  does not store (TIFF, QOI);
* :func:`archive_kind`: ``"gzip"``, ``"zip"``, ... for compressed files and archives, which
  ffprobe may inflate (its ``libgme`` demuxer reads gzip: 1 MB of gzip became 2 GB of memory);
* :func:`isobmff_boxes`: the walk itself, for callers that want the boxes.

This is the shared floor under crawl (what a response body is) and shard (what a crawled
file is before any tool opens it). Callers pass at least :data:`HEAD_BYTES` bytes, or the whole
body when it is shorter; :data:`MIN_MEDIA_HEAD` is the most any media check here looks at.
"""

from __future__ import annotations

from dataclasses import dataclass

#: Bytes every check here needs: tar's ``ustar`` magic sits at offset 257.
HEAD_BYTES = 512
#: Bytes the media checks need (MPEG-TS needs its second sync byte at 188).
MIN_MEDIA_HEAD = 192

#: Largest ``ftyp`` box taken as plausible (real ones hold a handful of brands: 16-64 bytes).
FTYP_MAX_BYTES = 1024
#: Largest leading ``wide`` / ``free`` / ``skip`` atom of a QuickTime file without ``ftyp``.
QT_PAD_MAX_BYTES = 1 << 24

_QT_TOP = frozenset({b"moov", b"mdat", b"wide", b"free", b"skip"})
_QT_PAD = frozenset({b"wide", b"free", b"skip"})
#: Atoms that may open a ``moov`` (``cmov``: a compressed movie header of old QuickTime).
_MOOV_CHILDREN = frozenset(
    {
        b"mvhd",
        b"cmov",
        b"trak",
        b"udta",
        b"meta",
        b"iods",
        b"mvex",
        b"prfl",
        b"clip",
        b"ctab",
        b"rmra",
        b"wide",
        b"free",
        b"skip",
    }
)
_TYPE_CHARS = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789 ")

#: (magic, offset, name) of compressed files and archives.
_ARCHIVES: tuple[tuple[bytes, int, str], ...] = (
    (b"\x1f\x8b", 0, "gzip"),
    (b"\x1f\x9d", 0, "compress"),
    (b"\xfd7zXZ\x00", 0, "xz"),
    (b"\x28\xb5\x2f\xfd", 0, "zstd"),
    (b"\x04\x22\x4d\x18", 0, "lz4"),
    (b"\x02\x21\x4c\x18", 0, "lz4"),
    (b"LZIP", 0, "lzip"),
    (b"PK\x03\x04", 0, "zip"),
    (b"PK\x05\x06", 0, "zip"),
    (b"PK\x07\x08", 0, "zip"),
    (b"7z\xbc\xaf\x27\x1c", 0, "7z"),
    (b"Rar!\x1a\x07", 0, "rar"),
    (b"ustar", 257, "tar"),
)


@dataclass(frozen=True)
class Box:
    """One top-level ISO-BMFF box header: its type, where it starts, its size and header size."""

    type: bytes
    offset: int
    size: int | None  # None: "to the end of the file" and the total length is unknown
    header: int  # 8, or 16 for the 64-bit size form


def _u32(data: bytes, pos: int) -> int:
    return int.from_bytes(data[pos : pos + 4], "big")


def _is_type(value: bytes) -> bool:
    return len(value) == 4 and all(b in _TYPE_CHARS for b in value) and value != b"    "


def isobmff_boxes(head: bytes, total_bytes: int | None = None) -> list[Box] | None:
    """The top-level boxes whose headers lie in ``head``, or None when any header is malformed.

    A box may end beyond ``head`` (its header is all that is needed), never beyond
    ``total_bytes`` when that is known. A size of 0 means "to the end" and ends the walk.
    """
    boxes: list[Box] = []
    pos = 0
    while pos + 8 <= len(head):
        size, kind, header = _u32(head, pos), head[pos + 4 : pos + 8], 8
        if not _is_type(kind):
            return None
        if size == 1:  # 64-bit size follows the type
            if pos + 16 > len(head):
                boxes.append(Box(kind, pos, None, 16))
                break
            size, header = int.from_bytes(head[pos + 8 : pos + 16], "big"), 16
            if size < 16:
                return None
        elif size == 0:
            end_size = None if total_bytes is None else total_bytes - pos
            if end_size is not None and end_size < 8:
                return None
            boxes.append(Box(kind, pos, end_size, 8))
            break
        elif size < 8:
            return None
        if total_bytes is not None and pos + size > total_bytes:
            return None
        boxes.append(Box(kind, pos, size, header))
        pos += size
    return boxes


def looks_like_text(head: bytes) -> bool:
    """No NUL and no control byte other than whitespace and ESC: text, HTML, JSON, a playlist."""
    if not head:
        return False
    return not any(b < 0x20 and b not in (0x09, 0x0A, 0x0C, 0x0D, 0x1B) for b in head)


def _ftyp_type(head: bytes, ftyp: Box) -> tuple[str, str] | None:
    """An ``ftyp`` box of plausible size whose brands are four letters, digits or spaces."""
    if _u32(head, ftyp.offset) in (0, 1):  # an ftyp "to the end" or with a 64-bit size
        return None
    if ftyp.size is None or not 16 <= ftyp.size <= FTYP_MAX_BYTES:
        return None
    if (ftyp.size - 16) % 4 or len(head) < 12:
        return None
    brand = head[8:12]
    if not _is_type(brand):
        return None
    for pos in range(16, min(ftyp.size, len(head)) - 3, 4):
        compatible = head[pos : pos + 4]
        if len(compatible) == 4 and compatible != b"\x00\x00\x00\x00" and not _is_type(compatible):
            return None
    if brand in (b"avif", b"avis"):
        return "image", "avif"
    if brand.startswith(b"qt"):
        return "video", "mov"
    return "video", "mp4"


def _quicktime_ok(head: bytes, first: Box) -> bool:
    """A QuickTime file without ``ftyp``: padding of a sane size, or a ``moov`` with a real child."""
    if first.type not in _QT_TOP or looks_like_text(head):
        return False
    if first.type in _QT_PAD:  # padding that runs to the end would leave no movie at all
        size = _u32(head, first.offset)
        return 8 <= size <= QT_PAD_MAX_BYTES
    if first.type == b"moov":
        child = first.offset + first.header
        if child + 8 > len(head):
            return False
        child_size = _u32(head, child)
        room = None if first.size is None else first.size - first.header
        return (
            head[child + 4 : child + 8] in _MOOV_CHILDREN
            and child_size >= 8
            and (room is None or child_size <= room)
        )
    return True  # mdat: codec data follows, nothing more to check


def isobmff_type(head: bytes, total_bytes: int | None = None) -> tuple[str, str] | None:
    """``(kind, ext)`` of a structurally valid ISO-BMFF / QuickTime head, else None."""
    boxes = isobmff_boxes(head, total_bytes)
    if not boxes:
        return None
    first = boxes[0]
    if first.type == b"ftyp":
        return _ftyp_type(head, first)
    return ("video", "mp4") if _quicktime_ok(head, first) else None


def _magic_type(head: bytes) -> tuple[str, str] | None:
    """Containers recognised by their opening bytes alone."""
    if head.startswith(b"\x1aE\xdf\xa3"):
        return "video", "webm"  # EBML: WebM or Matroska
    if head.startswith(b"RIFF") and head[8:12] == b"AVI ":
        return "video", "avi"
    if head.startswith(b"RIFF") and head[8:12] == b"WEBP":
        return "image", "webp"
    if head.startswith(b"FLV"):
        return "video", "flv"
    if head.startswith(b"OggS"):
        return "video", "ogv"
    if head.startswith((b"\x00\x00\x01\xba", b"\x00\x00\x01\xb3")):
        return "video", "mpg"
    if head.startswith(b"\xff\xd8\xff"):
        return "image", "jpg"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image", "png"
    if head.startswith((b"GIF87a", b"GIF89a")):
        return "image", "gif"
    if head.startswith(b"BM") and len(head) >= 6:
        return "image", "bmp"
    if len(head) > 188 and head[0] == 0x47 and head[188] == 0x47:
        return "video", "ts"  # MPEG-TS: a sync byte at the start of two 188-byte packets
    return None


def media_type(head: bytes, total_bytes: int | None = None) -> tuple[str, str] | None:
    """``(kind, ext)`` of a body from its first bytes, or None when it is not media we keep.

    ``total_bytes``: the body's full length when known (then no box may run past it).
    Text (no NUL, no control byte but whitespace) is never media, whatever its first bytes say.
    """
    if looks_like_text(head):
        return None
    if len(head) >= 8 and head[4:8] in (b"ftyp", *_QT_TOP):
        return isobmff_type(head, total_bytes)
    return _magic_type(head)


_OTHER_STILLS = (b"II*\x00", b"MM\x00*", b"qoif")


def looks_like_media(head: bytes, total_bytes: int | None = None) -> bool:
    """Media we keep, or a still image ffprobe and Pillow read (TIFF, QOI)."""
    return media_type(head, total_bytes) is not None or head.startswith(_OTHER_STILLS)


def looks_like_isobmff(head: bytes) -> bool:
    """Well-formed ISO-BMFF box headers as far as ``head`` goes (the rest may be cut off)."""
    return isobmff_type(head) is not None


def archive_kind(head: bytes) -> str | None:
    """``"gzip"``, ``"bzip2"``, ``"xz"``, ``"zstd"``, ``"lz4"``, ``"zip"``, ``"7z"``,
    ``"rar"``, ``"tar"``, ... when ``head`` opens a compressed file or an archive, else None."""
    for magic, offset, name in _ARCHIVES:
        if head[offset : offset + len(magic)] == magic:
            return name
    if head.startswith(b"BZh") and head[3:4].isdigit() and head[3:4] != b"0":
        return "bzip2"
    if len(head) >= 4 and head[1:4] == b"\x2a\x4d\x18" and 0x50 <= head[0] <= 0x5F:
        return "zstd"  # a zstd skippable frame
    return None
