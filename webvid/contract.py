"""The data contract: what each stage writes and how every reader finds it.

Takes nothing and produces nothing by itself: it is the one module the three stages share.
It defines

* the pyarrow schemas of the crawl records (``records/part-*.parquet``), the shard sample
  tables (``00000.parquet``), the shard index (``index.parquet``), the curation verdicts
  (``verdicts.parquet``) and the takedown log of a data root (``takedowns.parquet``);
* the status vocabulary (img2dataset / video2dataset compatible, extended with ours) and the
  closed set of failure reasons, with which of them are worth retrying;
* clip-id rules: stable ids derived from a source id or a URL that are always safe file names;
* img2dataset-style shard names and positional sample keys;
* the manifest written last into every output folder as its commit marker.

``docs/data-contract.md`` describes the same things for people; ``tests/test_contract.py``
keeps the two in step.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections.abc import Mapping
from typing import Final

import pyarrow as pa

FORMAT_VERSION: Final = 1

# --------------------------------------------------------------------------------------------
# Status vocabulary
# --------------------------------------------------------------------------------------------

#: Per-item status values. The first four are img2dataset's / video2dataset's own values, so
#: their readers' ``status == "success"`` filters keep working; the rest are ours.
STATUS_SUCCESS: Final = "success"
STATUS_FAILED_TO_DOWNLOAD: Final = "failed_to_download"
STATUS_FAILED_TO_RESIZE: Final = "failed_to_resize"  # img2dataset: image could not be re-encoded
STATUS_FAILED_TO_SUBSAMPLE: Final = "failed_to_subsample"  # video2dataset: transform failed
STATUS_SKIPPED_ROBOTS: Final = "skipped_robots"  # robots.txt disallows it for our User-Agent
STATUS_SKIPPED_OPT_OUT: Final = "skipped_opt_out"  # an opt-out signal (optout_source says which)
STATUS_SKIPPED_POLICY: Final = "skipped_policy"  # off-host, private address, bad scheme
STATUS_DISCOVERED: Final = "discovered"  # --dry-run: found and recorded, not downloaded

STATUSES: Final[tuple[str, ...]] = (
    STATUS_SUCCESS,
    STATUS_FAILED_TO_DOWNLOAD,
    STATUS_FAILED_TO_RESIZE,
    STATUS_FAILED_TO_SUBSAMPLE,
    STATUS_SKIPPED_ROBOTS,
    STATUS_SKIPPED_OPT_OUT,
    STATUS_SKIPPED_POLICY,
    STATUS_DISCOVERED,
)

#: Closed set of failure reasons (the ``reason`` column); ``error_message`` adds free detail.
#: Value: whether a later ``--retry-failed`` run should try the item again.
CRAWL_REASONS: Final[Mapping[str, bool]] = {
    "timeout": True,  # connect/read timeout or the per-request total deadline
    "connection_error": True,  # reset, refused, DNS failure, TLS error
    "http_429": True,  # rate limited even after our retries
    "http_5xx": True,  # server error even after our retries
    "truncated": True,  # body shorter than Content-Length / connection closed mid-body
    "http_404": False,  # not found / gone (404, 410)
    "http_4xx": False,  # any other client error (401, 403, ...)
    "too_large": False,  # body over --max-bytes
    "bad_content_type": False,  # Content-Type is not video/image media
    "bad_magic": False,  # bytes do not start like any media container we accept
    "empty_body": False,  # zero bytes
    "redirect_loop": False,  # redirect loop or more redirects than allowed
    "private_address": False,  # resolves to private/loopback/link-local without --allow-private
    "off_host": False,  # leaves the allowed hosts
    "invalid_url": False,  # not http(s), unparsable
    "robots_disallowed": False,  # robots.txt Disallow for our token
    "x_robots_tag": False,  # X-Robots-Tag or <meta name="robots"> opt-out (noai, noindex, ...)
    "opt_out": False,  # another machine-readable opt-out: optout_source says which
    "no_media_found": False,  # a page without any extractable video/image
    "ytdlp_error": False,  # yt-dlp could not extract or download
    "bad_row": False,  # a table row that is not UTF-8 text or is over table.max_row_bytes
    "taken_down": False,  # on an exclude list or a takedown log (webvid takedown): never fetched
}

#: Curation rejection reasons written by ``webvid shard`` into ``verdicts.parquet``.
VERDICT_REASONS: Final[tuple[str, ...]] = (
    # on an exclude list or removed by `webvid takedown`: counted in the funnel and the
    # manifest, but such an input has no verdict row (nothing but takedowns.parquet names it)
    "taken_down",
    "invalid_clip_id",  # the record's clip_id breaks the clip-id rule (is_clip_id): never a path
    "unsafe_media_path",  # media_path leaves the crawl dir (.., absolute, symlink) or is no file
    "missing_media",  # the crawl record says success but the media file is gone
    "empty_file",
    "archive",  # a compressed file or archive (gzip, zip, tar, ...): never probed
    "not_media",  # text, html or an unknown container
    "not_video",  # a still image or audio-only file in a video crawl
    "not_image",
    "undecodable",  # ffmpeg fails to decode frames
    "media_timeout",  # ffprobe or ffmpeg ran past its wall-clock limit and was killed
    "memory_limit",  # ffprobe or ffmpeg ran out of its address-space limit
    "truncated",  # decodes partly; container or stream cut off
    "duration_too_short",
    "duration_too_long",
    "too_small",  # short side below the minimum
    "too_large",  # frame area over the maximum (decompression-bomb guard)
    "aspect_ratio",
    "fps_out_of_range",
    "caption_too_short",
    "caption_too_long",
    "caption_language",
    "caption_templated",
    "black",  # black or blank frames (before "still": a black clip is also still)
    "still",  # motion score below the threshold
    "scene_cut",
    "duplicate_exact",  # same media sha256 as an earlier clip
    "duplicate_near",  # perceptual hash within the Hamming threshold
    "duplicate_source_id",
    # model-based (webvid score → --scores): caption–clip agreement or cosine under the minimum
    "caption_mismatch",
    "duplicate_semantic",  # past max_per_semantic_cluster in its semantic near-duplicate group
    "transcode_failed",
)


#: What a crawl declares it collects for (``--purpose``); the opt-out signals are read for it.
PURPOSES: Final[tuple[str, ...]] = ("train-ai", "train-genai", "search")

#: The machine-readable signals a crawl record's ``optout_source`` names (see docs/ethics.md).
OPTOUT_SOURCES: Final[tuple[str, ...]] = (
    "robots",  # robots.txt: Disallow for our token, or a group naming an AI-training crawler
    "content-usage",  # IETF AI preferences: Content-Usage header or robots.txt rule
    "content-signal",  # Content-Signal line in robots.txt
    "tdmrep-header",  # TDMRep tdm-reservation / tdm-policy response headers
    "tdmrep-file",  # TDMRep /.well-known/tdmrep.json
    "tdmrep-meta",  # TDMRep <meta name="tdm-reservation"> on the clip page
    "x-robots-tag",  # X-Robots-Tag response header
    "robots-meta",  # <meta name="robots"> on the clip page
    "takedown",  # not the site's: an exclude list or takedown log of ours (webvid takedown)
)

#: One signal seen for an item (``optout_signals``): where it came from, its raw value, what
#: it says for each purpose ("allow", "deny" or null: says nothing about it), and whether a
#: later TDMRep value on the same response overrides it.
OPTOUT_SIGNAL_TYPE: Final = pa.struct(
    [
        pa.field("source", pa.string()),  # one of OPTOUT_SOURCES
        pa.field("on", pa.string()),  # "page" (the clip page) | "media" (the media URL)
        pa.field("value", pa.string()),  # the raw header / rule / meta value
        pa.field("train_ai", pa.string()),
        pa.field("train_genai", pa.string()),
        pa.field("search", pa.string()),
        # a TDMRep value that a later one overrides (tdmrep.json < header < meta)
        pa.field("superseded", pa.bool_()),
    ]
)


def is_retryable(reason: str | None) -> bool:
    """Whether a failed crawl item with this reason is worth another attempt later."""
    return bool(reason) and CRAWL_REASONS.get(reason, False)


# --------------------------------------------------------------------------------------------
# Clip ids, media paths, shard names, sample keys
# --------------------------------------------------------------------------------------------

CLIP_ID_MAX_CHARS: Final = 96
_UNSAFE = re.compile(r"[^A-Za-z0-9_-]+")


def _digest(text: str, n: int = 16) -> str:
    return hashlib.sha1(text.encode("utf-8", "surrogatepass")).hexdigest()[:n]


def clip_id(source_id: str | None = None, url: str | None = None) -> str:
    """A stable clip id that is always a safe file name and a valid WebDataset key prefix.

    From ``source_id`` when the source has one (WebVid ``videoid``, a page's id), else from the
    media ``url``. The id keeps the readable part of the source id (``[A-Za-z0-9_-]`` after
    NFKC normalisation) and, whenever anything had to be changed or cut, appends ``-`` and 16
    hex digits of the SHA-1 of the original, so two different source ids never collide.
    ``..``, ``/``, NUL bytes, dots and 500-character ids all end up as plain names.
    """
    if source_id is not None and str(source_id).strip() != "":
        original = str(source_id)
        readable = _UNSAFE.sub("_", unicodedata.normalize("NFKC", original)).strip("_-")
        if readable == original and len(readable) <= CLIP_ID_MAX_CHARS:
            return readable
        keep = CLIP_ID_MAX_CHARS - 17
        readable = readable[:keep].strip("_-")
        return f"{readable}-{_digest(original)}" if readable else f"id-{_digest(original)}"
    if url:
        return f"u{_digest(str(url), 20)}"
    raise ValueError("clip_id needs a source id or a URL")


_CLIP_ID: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]*")


def is_clip_id(cid: object) -> bool:
    """Whether ``cid`` has the shape :func:`clip_id` gives: ``[A-Za-z0-9_-]``, starting with a
    letter or digit, at most ``CLIP_ID_MAX_CHARS``. Readers check ids from files written by
    others (a crawl dir is input like any other) before an id goes near a path."""
    return (
        isinstance(cid, str)
        and len(cid) <= CLIP_ID_MAX_CHARS
        and _CLIP_ID.fullmatch(cid) is not None
    )


def media_relpath(cid: str, ext: str) -> str:
    """Where a clip's media lives inside a crawl dir: ``media/<2 hex>/<clip_id>.<ext>``.

    The two-hex fan-out keeps folders small at 10M clips. ``cid`` must come from ``clip_id``;
    ``ext`` is reduced to lowercase alphanumerics.
    """
    safe_ext = re.sub(r"[^a-z0-9]", "", ext.lower())[:8] or "bin"
    if _UNSAFE.search(cid) or not cid:
        raise ValueError(f"not a clip id: {cid!r}")
    return f"media/{_digest(cid, 2)}/{cid}.{safe_ext}"


SHARD_DIGITS: Final = 5
SAMPLE_DIGITS: Final = 4
MAX_SAMPLES_PER_SHARD: Final = 10**SAMPLE_DIGITS


def shard_name(shard_index: int) -> str:
    """img2dataset's shard name: the index zero-padded to 5 digits (``00012``)."""
    if not 0 <= shard_index < 10**SHARD_DIGITS:
        raise ValueError(f"shard index out of range: {shard_index}")
    return f"{shard_index:0{SHARD_DIGITS}d}"


def sample_key(shard_index: int, index_in_shard: int) -> str:
    """img2dataset's positional key: 5 digits of shard, 4 of position (``000120005``)."""
    if not 0 <= index_in_shard < MAX_SAMPLES_PER_SHARD:
        raise ValueError(f"sample index out of range: {index_in_shard}")
    return f"{shard_name(shard_index)}{index_in_shard:0{SAMPLE_DIGITS}d}"


def parse_sample_key(key: str) -> tuple[int, int]:
    """Inverse of :func:`sample_key`."""
    if len(key) != SHARD_DIGITS + SAMPLE_DIGITS or not key.isdigit():
        raise ValueError(f"not a sample key: {key!r}")
    return int(key[:SHARD_DIGITS]), int(key[SHARD_DIGITS:])


def split_of(cid: str, val_fraction: float) -> str:
    """Stable train/val assignment from a hash of the clip id (independent of order/workers)."""
    if val_fraction <= 0:
        return "train"
    bucket = int(hashlib.sha256(cid.encode()).hexdigest()[:8], 16) / 0xFFFFFFFF
    return "val" if bucket < val_fraction else "train"


# --------------------------------------------------------------------------------------------
# Schemas
# --------------------------------------------------------------------------------------------

_ts = pa.timestamp("ms", tz="UTC")

#: One row per attempted item of a crawl (``records/part-*.parquet``).
CRAWL_RECORD_SCHEMA: Final = pa.schema(
    [
        pa.field("clip_id", pa.string(), nullable=False),
        pa.field("source", pa.string()),  # the table file or the start URL / recipe name
        pa.field("source_index", pa.int64()),  # row number in the input table; page order
        pa.field("source_id", pa.string()),  # WebVid videoid, page id, ...
        pa.field("page_url", pa.string()),
        pa.field("media_url", pa.string()),
        pa.field("caption", pa.string()),  # alt text / name as found, unmodified
        pa.field("description", pa.string()),
        pa.field("keywords", pa.list_(pa.string())),
        pa.field("duration_s", pa.float64()),  # as declared by the source
        pa.field("width", pa.int32()),  # as declared by the source
        pa.field("height", pa.int32()),
        pa.field("thumbnail_url", pa.string()),
        pa.field("media_kind", pa.string()),  # "video" | "image"
        pa.field("status", pa.string(), nullable=False),
        pa.field("reason", pa.string()),  # one of CRAWL_REASONS, null on success
        pa.field("error_message", pa.string()),
        pa.field("http_status", pa.int32()),
        pa.field("content_type", pa.string()),
        pa.field("bytes", pa.int64()),
        pa.field("sha256", pa.string()),
        pa.field("media_path", pa.string()),  # relative to the crawl dir, null unless success
        pa.field("via", pa.string()),  # "direct" | "yt-dlp"
        pa.field("attempts", pa.int32()),
        pa.field("started_at", _ts),
        pa.field("elapsed_s", pa.float64()),
        pa.field("extra_json", pa.string()),  # the source row's other columns, as a JSON object
        pa.field("optout_source", pa.string()),  # the signal that decided (OPTOUT_SOURCES)
        pa.field("optout_value", pa.string()),  # its raw value
        pa.field("optout_signals", pa.list_(OPTOUT_SIGNAL_TYPE)),  # every signal seen
    ]
)

#: One row per sample written into a shard (``00000.parquet`` beside ``00000.tar``).
#: The first columns are img2dataset's (``key``, ``url``, ``caption``, ``status``, ...).
SAMPLE_SCHEMA: Final = pa.schema(
    [
        pa.field("key", pa.string(), nullable=False),
        pa.field("url", pa.string()),
        pa.field("caption", pa.string()),  # clean caption, also KEY.txt
        pa.field("status", pa.string(), nullable=False),
        pa.field("error_message", pa.string()),
        pa.field("width", pa.int32()),
        pa.field("height", pa.int32()),
        pa.field("original_width", pa.int32()),
        pa.field("original_height", pa.int32()),
        pa.field("sha256", pa.string()),  # of the stored media member
        pa.field("clip_id", pa.string(), nullable=False),
        pa.field("shard", pa.string(), nullable=False),
        pa.field("split", pa.string(), nullable=False),  # "train" | "val"
        pa.field("media_kind", pa.string(), nullable=False),  # "video" | "image"
        pa.field("ext", pa.string(), nullable=False),  # tar member extension: mp4, jpg
        pa.field("caption_raw", pa.string()),
        pa.field("duration_s", pa.float64()),
        pa.field("fps", pa.float64()),
        pa.field("num_frames", pa.int32()),
        pa.field("frames", pa.int32()),  # pre-extracted JPEG frames stored beside the media
        pa.field("bytes", pa.int64()),
        pa.field("source_sha256", pa.string()),  # sha256 of the crawled file
        pa.field("source_id", pa.string()),
        pa.field("page_url", pa.string()),
        pa.field("crawl_dir", pa.string()),
    ]
)

#: One row per shard (``index.parquet`` in a shard dir); also the ``shards`` view.
SHARD_INDEX_SCHEMA: Final = pa.schema(
    [
        pa.field("shard", pa.string(), nullable=False),
        pa.field("split", pa.string(), nullable=False),
        pa.field("media_kind", pa.string(), nullable=False),
        pa.field("count", pa.int64(), nullable=False),
        pa.field("tar_bytes", pa.int64(), nullable=False),
        pa.field("media_bytes", pa.int64(), nullable=False),
        pa.field("tar_sha256", pa.string(), nullable=False),
        pa.field("first_key", pa.string()),
        pa.field("last_key", pa.string()),
    ]
)

#: One row per curation input, kept or rejected (``verdicts.parquet``).
VERDICT_SCHEMA: Final = pa.schema(
    [
        pa.field("clip_id", pa.string(), nullable=False),
        pa.field("crawl_dir", pa.string()),
        pa.field("media_path", pa.string()),
        pa.field("source_id", pa.string()),
        pa.field("media_kind", pa.string()),
        pa.field("kept", pa.bool_(), nullable=False),
        pa.field("reason", pa.string()),  # first failing filter, one of VERDICT_REASONS
        pa.field("reasons", pa.list_(pa.string())),  # every filter that would reject
        pa.field("detail", pa.string()),
        pa.field("key", pa.string()),  # sample key when kept
        pa.field("shard", pa.string()),
        pa.field("split", pa.string()),
        pa.field("caption_raw", pa.string()),
        pa.field("caption", pa.string()),  # cleaned
        # probe scores
        pa.field("container", pa.string()),
        pa.field("codec", pa.string()),
        pa.field("width", pa.int32()),
        pa.field("height", pa.int32()),
        pa.field("rotation", pa.int32()),
        pa.field("fps", pa.float64()),
        pa.field("duration_s", pa.float64()),
        pa.field("num_frames", pa.int64()),
        pa.field("bitrate", pa.int64()),
        pa.field("has_audio", pa.bool_()),
        pa.field("bytes", pa.int64()),
        pa.field("sha256", pa.string()),
        # filter scores
        pa.field("short_side", pa.int32()),
        pa.field("aspect_ratio", pa.float64()),
        pa.field("caption_words", pa.int32()),
        pa.field("caption_lang", pa.string()),
        pa.field("caption_lang_score", pa.float64()),
        pa.field("caption_count", pa.int64()),  # clips sharing this clean caption
        pa.field("motion_score", pa.float64()),
        pa.field("black_fraction", pa.float64()),
        pa.field("scene_cuts", pa.int32()),
        pa.field("phash", pa.string()),  # hex of the multi-frame perceptual hash
        pa.field("duplicate_of", pa.string()),  # clip_id of the kept twin
        pa.field("hamming", pa.int32()),  # distance to that twin (near-duplicates)
        pa.field("transform", pa.string()),  # "copy" | "transcode" | "resize" | null
        # model scores (null unless `webvid shard --scores`/`webvid refilter` read a scores table)
        pa.field("caption_cosine", pa.float64()),
        pa.field("caption_agreement", pa.float64()),
        pa.field("semantic_group", pa.string()),
        pa.field("semantic_group_rank", pa.int32()),
    ]
)

#: One row per sample of a shard set scored by ``webvid score`` (any file name; call it
#: ``scores.parquet`` for a ``scores`` view). Keyed like ``verdicts``: clip_id, shard, key.
SCORES_SCHEMA: Final = pa.schema(
    [
        pa.field("clip_id", pa.string(), nullable=False),
        pa.field("shard", pa.string(), nullable=False),
        pa.field("key", pa.string(), nullable=False),
        pa.field("split", pa.string()),
        pa.field("caption", pa.string()),
        pa.field("broken", pa.string()),  # why the sample could not be decoded (no scores)
        pa.field("caption_cosine", pa.float64()),
        pa.field("caption_rank", pa.int64()),  # of its caption among all captions, for the clip
        pa.field("clip_rank", pa.int64()),  # of the clip among all clips, for its caption
        pa.field("rank_pool", pa.int64()),  # how many candidates the ranks were counted among
        pa.field("caption_agreement", pa.float64()),  # 1 - (max rank - 1) / (pool - 1)
        pa.field("neighbor_ids", pa.list_(pa.string())),  # nearest other clips, nearest first
        pa.field("neighbor_distances", pa.list_(pa.float64())),  # 1 - cosine
        pa.field("semantic_cluster", pa.int64()),  # k-means bucket of the clip embedding
        pa.field("semantic_group", pa.string()),  # clip_id of the group's first by the keep rule
        pa.field("semantic_group_size", pa.int32()),
        pa.field("semantic_group_rank", pa.int32()),  # 1: kept by semantic dedup
        pa.field("semantic_duplicate_of", pa.string()),  # the group's first, when not it
        pa.field("semantic_cosine", pa.float64()),  # cosine to semantic_duplicate_of
    ]
)

#: One row per sample removed by ``webvid takedown`` and per listed identifier that matched
#: nothing (``takedowns.parquet`` in the data root); later crawls and shard runs skip them all.
TAKEDOWN_SCHEMA: Final = pa.schema(
    [
        pa.field("takedown_id", pa.string(), nullable=False),  # one per takedown run
        pa.field("at", _ts, nullable=False),  # when the takedown was planned (UTC)
        pa.field("reason", pa.string()),  # why: --reason
        pa.field("list", pa.string()),  # the list file, as given
        pa.field("list_sha256", pa.string()),
        pa.field("kind", pa.string(), nullable=False),  # clip_id | url | sha256 | key
        pa.field("identifier", pa.string(), nullable=False),  # as listed
        pa.field("matched", pa.string()),  # the column it matched; null: matched nothing
        pa.field("shard_set", pa.string()),  # the shard dir, relative to the root
        pa.field("crawl_dir", pa.string()),  # the crawl dir a record was removed from
        pa.field("split", pa.string()),
        pa.field("shard", pa.string()),  # null for a rejected input (a verdict row only)
        pa.field("key", pa.string()),
        pa.field("clip_id", pa.string()),
        pa.field("source_id", pa.string()),
        pa.field("url", pa.string()),
        pa.field("page_url", pa.string()),
        pa.field("sha256", pa.string()),  # of the stored media member
        pa.field("source_sha256", pa.string()),  # of the crawled file
        pa.field("index_rows", pa.int64()),  # rows removed from embedding indexes
    ]
)

SCHEMAS: Final[Mapping[str, pa.Schema]] = {
    "crawl": CRAWL_RECORD_SCHEMA,
    "samples": SAMPLE_SCHEMA,
    "shards": SHARD_INDEX_SCHEMA,
    "verdicts": VERDICT_SCHEMA,
    "takedowns": TAKEDOWN_SCHEMA,
    "scores": SCORES_SCHEMA,
}

# --------------------------------------------------------------------------------------------
# Files of each output folder (what `webvid query` looks for)
# --------------------------------------------------------------------------------------------

MANIFEST_NAME: Final = "manifest.json"
CRAWL_RECORDS_GLOB: Final = "records/part-*.parquet"
SHARD_INDEX_NAME: Final = "index.parquet"
VERDICTS_NAME: Final = "verdicts.parquet"
SAMPLE_PARQUET_RE: Final = re.compile(r"^\d{5,}\.parquet$")
TAKEDOWNS_NAME: Final = "takedowns.parquet"  # the takedown log of a data root
#: Schema metadata key of an embedding index written by ``webvid embed`` (any file name).
EMBEDDING_INDEX_META_KEY: Final = b"webvid.index"
#: Schema metadata key of a scores table written by ``webvid score`` (how it was made).
SCORES_META_KEY: Final = b"webvid.scores"

#: Manifest ``kind`` values, one per kind of output folder.
MANIFEST_KINDS: Final = ("crawl", "shards", "run")
MANIFEST_REQUIRED_KEYS: Final = (
    "format",
    "format_version",
    "kind",
    "created_at",
    "tool",
    "versions",
    "config",
    "counts",
)


def validate_table(table: pa.Table, schema: pa.Schema) -> pa.Table:
    """Cast ``table`` to ``schema`` (same column names, in schema order) or raise ValueError.

    Writers call this before every Parquet write, so a schema drift is an error at the source
    instead of a surprise in a reader.
    """
    missing = [n for n in schema.names if n not in table.column_names]
    extra = [n for n in table.column_names if n not in schema.names]
    if missing or extra:
        raise ValueError(f"table does not match schema: missing {missing}, unexpected {extra}")
    table = table.select(schema.names)
    for field in schema:
        if not field.nullable and table.column(field.name).null_count:
            raise ValueError(f"column {field.name!r} must not contain nulls")
    return table.cast(schema)


def with_new_columns(table: pa.Table, schema: pa.Schema) -> pa.Table:
    """``table`` with every nullable column of ``schema`` it lacks added as nulls: a file
    written before a column was added (a crawl part without ``optout_*``) is read, and
    rewritten, in today's schema."""
    for field in schema:
        if field.name not in table.column_names and field.nullable:
            table = table.append_column(field, pa.nulls(table.num_rows, field.type))
    return table


def rows_to_table(rows: list[Mapping[str, object]], schema: pa.Schema) -> pa.Table:
    """Build a schema-conforming table from row dicts; missing keys become nulls."""
    unknown = {k for r in rows for k in r} - set(schema.names)
    if unknown:
        raise ValueError(f"unknown columns for schema: {sorted(unknown)}")
    columns = {f.name: [r.get(f.name) for r in rows] for f in schema}
    return validate_table(pa.table(columns, schema=schema), schema)
