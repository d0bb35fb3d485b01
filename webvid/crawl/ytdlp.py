"""yt-dlp for URLs that are not direct media: player pages, HLS/DASH manifests.

Takes a URL and a clip id; produces an :class:`~webvid.crawl.items.Outcome` with the file
committed under ``OUT/media/<xx>/<clip_id>.<ext>`` exactly like a direct download (sha256,
size cap, magic check, fsync, rename). yt-dlp runs in-process: a small thread pool with one
quiet ``YoutubeDL`` per worker thread (built once, reused), each thread writing into its own
scratch folder under ``OUT/media/.tmp-ytdlp/``. yt-dlp's errors are classified into the
crawl reasons (HTTP 404/429/5xx, timeouts) so ``--retry-failed`` treats them like ours.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import hashlib
import logging
import re
import shutil
import threading
from pathlib import Path
from typing import Any

from webvid.crawl import media
from webvid.crawl.config import CrawlConfig
from webvid.crawl.items import Outcome
from webvid.crawl.sink import Disk

log = logging.getLogger(__name__)

_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_HTTP = re.compile(r"HTTP Error (\d{3})")


class _Logger:
    """Routes yt-dlp's messages to our logging (debug), never to the terminal."""

    def debug(self, msg: str) -> None:
        log.debug("yt-dlp: %s", msg)

    def info(self, msg: str) -> None:
        log.debug("yt-dlp: %s", msg)

    def warning(self, msg: str) -> None:
        log.debug("yt-dlp warning: %s", msg)

    def error(self, msg: str) -> None:
        log.debug("yt-dlp error: %s", msg)


def classify(message: str) -> str:
    """A crawl reason for a yt-dlp error message."""
    m = _HTTP.search(message)
    if m:
        code = int(m.group(1))
        if code in (404, 410):
            return "http_404"
        if code == 429:
            return "http_429"
        if code >= 500:
            return "http_5xx"
        return "http_4xx"
    low = message.lower()
    if "timed out" in low or "timeout" in low:
        return "timeout"
    if "connection reset" in low or "connection refused" in low or "name resolution" in low:
        return "connection_error"
    return "ytdlp_error"


class YtdlpPool:
    def __init__(self, cfg: CrawlConfig, disk: Disk) -> None:
        self.cfg = cfg
        self.disk = disk
        self.out = disk.out
        self.scratch = self.out / "media" / ".tmp-ytdlp"
        self._pool = concurrent.futures.ThreadPoolExecutor(
            cfg.ytdlp_threads, thread_name_prefix="yt-dlp"
        )
        self._local = threading.local()

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)
        shutil.rmtree(self.scratch, ignore_errors=True)

    async def download(self, url: str, cid: str) -> Outcome:
        loop = asyncio.get_running_loop()
        out = await loop.run_in_executor(self._pool, self._download, url, cid)
        out.via = "yt-dlp"
        out.attempts = max(out.attempts, 1)
        return out

    def _ydl(self) -> tuple[Any, Path]:
        ydl = getattr(self._local, "ydl", None)
        if ydl is None:
            import yt_dlp

            folder = self.scratch / threading.current_thread().name
            params = {
                "quiet": True,
                "no_warnings": True,
                "noprogress": True,
                "noplaylist": True,
                "playlist_items": "1",
                "format": self.cfg.ytdlp_format,
                "max_filesize": self.cfg.max_bytes,
                "socket_timeout": self.cfg.net.read_timeout_s,
                "retries": self.cfg.net.retries,
                "http_headers": {"User-Agent": self.cfg.polite.user_agent},
                "outtmpl": {"default": str(folder / "%(id).60B.%(ext)s")},
                "overwrites": True,
                "continuedl": False,
                "cachedir": False,
                "logger": _Logger(),
            }
            ydl = self._local.ydl = yt_dlp.YoutubeDL(params)
            self._local.folder = folder
        return ydl, self._local.folder

    def _download(self, url: str, cid: str) -> Outcome:
        import yt_dlp

        ydl, folder = self._ydl()
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True, exist_ok=True)
        try:
            ydl.extract_info(url, download=True)
        except yt_dlp.utils.DownloadError as exc:
            message = _ANSI.sub("", str(exc)).removeprefix("ERROR: ").strip().splitlines()[0][:300]
            return Outcome(classify(message), f"yt-dlp: {message}")
        files = [
            p for p in folder.rglob("*") if p.is_file() and not p.name.endswith((".part", ".ytdl"))
        ]
        if not files:
            return Outcome(
                "too_large", "yt-dlp downloaded nothing (over --max-bytes or no formats)"
            )
        path = max(files, key=lambda p: p.stat().st_size)
        return self._commit(path, cid)

    def _commit(self, path: Path, cid: str) -> Outcome:
        size = path.stat().st_size
        if size == 0:
            return Outcome("empty_body", "yt-dlp produced an empty file", bytes=0)
        if size > self.cfg.max_bytes:
            return Outcome("too_large", f"{size} bytes is over --max-bytes", bytes=size)
        hasher = hashlib.sha256()
        head = b""
        with open(path, "rb") as fh:
            while chunk := fh.read(1 << 20):
                if len(head) < media.SNIFF_BYTES:
                    head += chunk[: media.SNIFF_BYTES - len(head)]
                hasher.update(chunk)
        kind_ext = media.sniff(head)
        if kind_ext is None:
            return Outcome(
                "bad_magic",
                f"yt-dlp output is not a known container (starts {head[:8]!r})",
                bytes=size,
            )
        kind, ext = kind_ext
        rel = self.disk.commit(cid, ext, None, path)
        ctype = f"{kind}/{'jpeg' if ext == 'jpg' else ext}"
        return Outcome(
            None,
            bytes=size,
            sha256=hasher.hexdigest(),
            media_path=rel,
            media_kind=kind,
            content_type=ctype,
        )
