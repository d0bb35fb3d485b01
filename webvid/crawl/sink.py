"""Media bodies → verified files under ``OUT/media/<xx>/<clip_id>.<ext>``.

Takes an aiohttp response (streamed) for one clip; produces an
:class:`~webvid.crawl.items.Outcome`: success with size, sha256, kind and the committed
file, or the reason it was refused (opt-out header, wrong content type, over the byte cap,
bad magic bytes, truncated, empty).

How a body travels: sha256 is computed while it streams; a body up to
``output.buffer_bytes`` stays in memory and is written in one go; a larger one spills to
``media/.partial/<clip_id>.part`` in writes of about 256 KiB (one thread-pool trip per
write, not per network chunk). Either way the file is written under a temp name,
optionally fsynced, and renamed to its final name only once complete and verified — a
killed process never leaves a partial file under a final name. A spilled body cut short is
kept with ``<clip_id>.partjson`` (URL + validators) and resumed with ``Range``/``If-Range``
by the next attempt or the next run.

All file-system calls run on a small thread pool (:class:`Disk`): on a busy disk an
``open`` takes a millisecond, which the event loop must not wait for.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import functools
import hashlib
import json
import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

import aiohttp

from webvid import contract, io
from webvid.crawl import media
from webvid.crawl.items import Outcome
from webvid.crawl.recipe import CrawlRecipe

_CONTENT_RANGE = re.compile(r"bytes\s+(\d+)-(\d+)/(\d+|\*)")
#: A spilled body goes to its ``.part`` file in writes of about this size (one thread-pool
#: trip each, instead of one per network chunk).
_WRITE_BYTES = 256 * 1024  # held per item in flight, on top of the network buffers


class Disk:
    """The crawl dir's media side: a thread pool for file calls and the partials index."""

    def __init__(self, out: Path, cfg: CrawlRecipe, *, owner: bool = True) -> None:
        """``owner=False`` for worker processes sharing the folder: the parent cleans it."""
        self.out = Path(out)
        self.owner = owner
        self.partial_dir = self.out / "media" / ".partial"
        self.partial_dir.mkdir(parents=True, exist_ok=True)
        self.pool = concurrent.futures.ThreadPoolExecutor(4, thread_name_prefix="webvid-io")
        self._dirs: set[str] = set()
        self._out, self._partial = str(self.out), str(self.partial_dir)
        self.partials = self._scan_partials()

    def _scan_partials(self) -> set[str]:
        """Clip ids with a resumable partial body; the owner removes temps and orphans of a kill."""
        names = {p.name for p in self.partial_dir.iterdir()}
        keep = {
            n[: -len(".partjson")]
            for n in names
            if n.endswith(".partjson") and n[: -len("json")] in names
        }
        if not self.owner:
            return keep
        for name in names:
            stem = name.rsplit(".", 1)[0]
            if stem not in keep:
                with contextlib.suppress(OSError):
                    (self.partial_dir / name).unlink()
        return keep

    async def run(self, fn: Callable[..., Any], *args: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(self.pool, fn, *args)

    def ensure_dir(self, folder: str) -> None:
        if folder not in self._dirs:
            os.makedirs(folder, exist_ok=True)
            self._dirs.add(folder)

    def commit(self, cid: str, ext: str, data: bytes | None, part: Path | None) -> str:
        """Write ``data`` (or move the finished ``part``) to the clip's final path."""
        rel = contract.media_relpath(cid, ext)
        # plain strings, not Path objects: this runs once per item
        final = os.path.join(self._out, rel)  # safe by construction: media_relpath takes clip ids
        self.ensure_dir(os.path.dirname(final))
        if data is not None:
            tmp = os.path.join(self._partial, f"{io.TMP_PREFIX}{cid}.{ext}")
            with open(tmp, "wb") as fh:
                fh.write(data)  # one write per body
            src: str | Path = tmp
        else:
            assert part is not None
            src = part
        # Complete and verified before the rename, so a final name never holds a partial
        # body, even after kill -9. Durability against power loss is batched: the records
        # part that first names this file is committed only after a file-system sync
        # (RecordStore.write_batch), and journal recovery re-checks sha256.
        os.replace(src, final)
        return rel

    def commit_bytes(self, cid: str, ext: str, data: bytes) -> tuple[str, str]:
        return hashlib.sha256(data).hexdigest(), self.commit(cid, ext, data, None)

    def close(self) -> None:
        self.pool.shutdown(wait=True)
        if not self.owner:
            return
        with contextlib.suppress(OSError):
            self.partial_dir.rmdir()  # only when empty: resumable partials stay


class MediaSink:
    """One clip's body: checks, hashing, buffering or spilling, verified commit."""

    def __init__(
        self,
        cfg: CrawlRecipe,
        disk: Disk,
        opt_out: Callable[[aiohttp.ClientResponse], Outcome | None],
        cid: str,
        url: str,
    ) -> None:
        self.cfg = cfg
        self.disk = disk
        self.opt_out = opt_out
        self.cid = cid
        self.url = url
        self.spilled = False

    # Paths built on first use: most bodies are small and never touch media/.partial
    @functools.cached_property
    def part(self) -> Path:
        return self.disk.partial_dir / f"{self.cid}.part"

    @functools.cached_property
    def meta(self) -> Path:
        return self.disk.partial_dir / f"{self.cid}.partjson"

    # -- resume --------------------------------------------------------------------------

    def _saved_meta(self) -> dict[str, Any] | None:
        if self.cid not in self.disk.partials:
            return None
        try:
            meta = json.loads(self.meta.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        return meta if meta.get("url") == self.url and self.part.is_file() else None

    def range_headers(self) -> dict[str, str]:
        meta = self._saved_meta()
        size = self.part.stat().st_size if meta else 0
        if not meta or size <= 0:
            return {}
        headers = {"Range": f"bytes={size}-"}
        validator = meta.get("etag") or meta.get("last_modified")
        if validator:
            headers["If-Range"] = validator
        return headers

    def _resume_offset(self, resp: aiohttp.ClientResponse) -> int:
        if resp.status != 206:
            return 0
        m = _CONTENT_RANGE.match(resp.headers.get("Content-Range", ""))
        have = self.part.stat().st_size if self.part.is_file() else 0
        if not m or int(m.group(1)) != have or have == 0:
            self._remove()  # start over on the next attempt
            raise aiohttp.ClientPayloadError("206 answer does not continue the partial file")
        return have

    @staticmethod
    def _expected_total(resp: aiohttp.ClientResponse, offset: int) -> int | None:
        if resp.status == 206:
            m = _CONTENT_RANGE.match(resp.headers.get("Content-Range", ""))
            if m and m.group(3) != "*":
                return int(m.group(3))
        length = resp.headers.get("Content-Length")
        return offset + int(length) if length and length.isdigit() else None

    # -- the body ------------------------------------------------------------------------

    async def handle(self, resp: aiohttp.ClientResponse, final_url: str) -> Outcome:
        ctype = resp.headers.get("Content-Type")
        base = {"http_status": resp.status, "content_type": ctype}
        refused = self.opt_out(resp)
        if refused:
            return refused
        cls = media.content_type_class(ctype)
        if cls in ("html", "manifest", "other"):
            handoff = (
                cls in ("html", "manifest") and media.url_ext(self.url) not in media.MEDIA_EXTS
            )
            return Outcome(
                "bad_content_type",
                f"not media: Content-Type {media.mime_of(ctype)}",
                handoff=handoff,
                **base,
            )
        offset = self._resume_offset(resp)
        total = self._expected_total(resp, offset)
        if total is not None and total > self.cfg.max_bytes:
            return Outcome(
                "too_large", f"{total} bytes is over --max-bytes {self.cfg.max_bytes}", **base
            )
        if not offset and total is not None and total <= self.cfg.output.buffer_bytes:
            return await self._small(resp, total, base)
        hasher = hashlib.sha256()
        head, fh = (await self.disk.run(self._reopen, hasher)) if offset else (b"", None)
        size, buf = offset, bytearray()
        pending = bytearray()  # spilled body not yet written: one pool trip per _WRITE_BYTES
        try:
            async for chunk in resp.content.iter_chunked(self.cfg.net.chunk_bytes):
                size += len(chunk)
                if size > self.cfg.max_bytes:
                    return Outcome(
                        "too_large",
                        f"body over --max-bytes {self.cfg.max_bytes}",
                        bytes=size,
                        **base,
                    )
                if len(head) < media.SNIFF_BYTES:
                    head += chunk[: media.SNIFF_BYTES - len(head)]
                    if len(head) >= media.SNIFF_BYTES and media.sniff(head) is None:
                        return Outcome(
                            "bad_magic",
                            f"not a known media container (starts {head[:8]!r})",
                            **base,
                        )
                if fh is None and len(buf) + len(chunk) <= self.cfg.output.buffer_bytes:
                    buf += chunk  # hashed in one go at commit, off the event loop
                    continue
                if fh is None:
                    fh = await self.disk.run(
                        self._spill, bytes(buf), hasher, resp.headers.copy(), total
                    )
                    buf = bytearray()
                pending += chunk
                if len(pending) >= _WRITE_BYTES:
                    full, pending = pending, bytearray()  # handed over, not copied
                    await self.disk.run(_write, fh, hasher, full)
        finally:
            if fh is not None:
                # what arrived is kept even when the body is cut short: a Range resume
                # continues from the partial file's size
                await self.disk.run(_write_close, fh, hasher, pending)
        if total is not None and size < total:
            return Outcome("truncated", f"got {size} of {total} bytes", bytes=size, **base)
        if size == 0:
            return Outcome("empty_body", "empty body", bytes=0, **base)
        kind_ext = media.sniff(head)
        if kind_ext is None:
            return Outcome(
                "bad_magic", f"not a known media container (starts {head[:8]!r})", **base
            )
        kind, ext = kind_ext
        if fh is None:  # hash + write in one trip to the pool (hashlib releases the GIL there)
            digest, rel = await self.disk.run(self.disk.commit_bytes, self.cid, ext, bytes(buf))
        else:
            digest = hasher.hexdigest()
            rel = await self.disk.run(self.disk.commit, self.cid, ext, None, self.part)
            await self.disk.run(self._remove_meta)
        return Outcome(None, bytes=size, sha256=digest, media_path=rel, media_kind=kind, **base)

    async def _small(
        self, resp: aiohttp.ClientResponse, total: int, base: dict[str, Any]
    ) -> Outcome:
        """Fast path: a body with a known, small Content-Length is read in one call."""
        data = await resp.read()  # aiohttp stops at Content-Length: the cap already holds
        size = len(data)
        if size < total:
            return Outcome("truncated", f"got {size} of {total} bytes", bytes=size, **base)
        if size == 0:
            return Outcome("empty_body", "empty body", bytes=0, **base)
        kind_ext = media.sniff(data[: media.SNIFF_BYTES])
        if kind_ext is None:
            return Outcome(
                "bad_magic", f"not a known media container (starts {data[:8]!r})", **base
            )
        kind, ext = kind_ext
        digest, rel = await self.disk.run(self.disk.commit_bytes, self.cid, ext, data)
        return Outcome(None, bytes=size, sha256=digest, media_path=rel, media_kind=kind, **base)

    def _spill(self, data: bytes, hasher: Any, headers: Any, total: int | None) -> IO[bytes]:
        """Switch from memory to ``.part`` (and remember validators when resumable)."""
        with contextlib.suppress(FileNotFoundError):
            self.meta.unlink()
        self.disk.partials.discard(self.cid)
        fh = open(self.part, "wb")  # noqa: SIM115 - closed by handle()
        self.spilled = True
        _write(fh, hasher, data)
        if headers.get("Accept-Ranges", "").lower() == "bytes" and total:
            meta = {
                "url": self.url,
                "etag": headers.get("ETag"),
                "last_modified": headers.get("Last-Modified"),
                "total": total,
            }
            self.meta.write_text(json.dumps(meta), encoding="utf-8")
            self.disk.partials.add(self.cid)
        return fh

    def _reopen(self, hasher: Any) -> tuple[bytes, IO[bytes]]:
        """Hash what a resumed partial already holds; open it for appending."""
        head = b""
        with open(self.part, "rb") as fh:
            while chunk := fh.read(1 << 20):
                if len(head) < media.SNIFF_BYTES:
                    head += chunk[: media.SNIFF_BYTES - len(head)]
                hasher.update(chunk)
        self.spilled = True
        return head, open(self.part, "ab")

    def _remove_meta(self) -> None:
        self.disk.partials.discard(self.cid)
        with contextlib.suppress(FileNotFoundError):
            self.meta.unlink()

    def _remove(self) -> None:
        self.disk.partials.discard(self.cid)
        for path in (self.part, self.meta):
            with contextlib.suppress(FileNotFoundError):
                path.unlink()

    async def discard(self, *, keep_partial: bool) -> None:
        """Drop a failed body, unless it may be resumed later with a Range request."""
        if keep_partial and self.cid in self.disk.partials:
            return
        if self.spilled or self.cid in self.disk.partials:
            await self.disk.run(self._remove)


def _write(fh: IO[bytes], hasher: Any, chunk: bytes | bytearray) -> None:
    hasher.update(chunk)  # releases the GIL on large buffers, as the write does
    fh.write(chunk)


def _write_close(fh: IO[bytes], hasher: Any, chunk: bytes | bytearray) -> None:
    try:
        if chunk:
            _write(fh, hasher, chunk)
    finally:
        fh.close()
