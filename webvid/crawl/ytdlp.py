"""yt-dlp for URLs that are not direct media: player pages, HLS/DASH manifests.

Takes a URL and a clip id; produces an :class:`~webvid.crawl.items.Outcome` with the file
committed under ``OUT/media/<xx>/<clip_id>.<ext>`` exactly like a direct download (sha256,
size cap, magic check, fsync, rename). yt-dlp runs in-process on a small thread pool, in
*lanes*: each lane has one quiet ``YoutubeDL`` (built once, reused), its own scratch folder
under ``OUT/media/.tmp-ytdlp/`` and its own port of the crawl's egress proxy
(:mod:`webvid.crawl.proxy`), which yt-dlp is given as its ``proxy``. So yt-dlp's own
requests pass the same egress policy as ours (canonical host, private addresses refused on
the resolved address), and each job is bounded three ways: the proxy cuts its connections
past its byte budget or the request deadline (``net.total_timeout_s``), a progress hook
cancels it past ``--max-bytes``, and a watchdog stops it when its scratch files grow past
``--max-bytes`` or the deadline passes — the record is written then, and the job's file is
never committed. Only formats yt-dlp downloads itself over HTTP are accepted (http(s),
HLS, DASH segments; not live streams, RTMP, or other external downloaders), each format
URL checked by the policy first. yt-dlp's errors are classified into the crawl reasons (HTTP
404/429/5xx, timeouts) so ``--retry-failed`` treats them like ours.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import dataclasses
import hashlib
import logging
import re
import shutil
import threading
import time
from pathlib import Path
from typing import Any

from webvid.crawl import media
from webvid.crawl.egress import EgressPolicy
from webvid.crawl.items import Outcome
from webvid.crawl.proxy import EgressProxy, Job, Lane
from webvid.crawl.recipe import CrawlRecipe
from webvid.crawl.sink import Disk

log = logging.getLogger(__name__)

_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_HTTP = re.compile(r"HTTP Error (\d{3})")
#: format protocols yt-dlp downloads in-process over HTTP (through our proxy)
ALLOWED_PROTOCOLS = frozenset(
    {"http", "https", "m3u8", "m3u8_native", "http_dash_segments", "http_dash_segments_generator"}
)
WATCH_INTERVAL_S = 0.2
_FFMPEG_PROTOCOLS = "http,https,tcp,tls,crypto,httpproxy"


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


class _Stop(Exception):
    """Raised in yt-dlp's progress hook to end a job that hit a limit."""


@dataclasses.dataclass
class _Task:
    """One job as the worker thread and the watchdog share it."""

    max_bytes: int
    deadline: float  # time.monotonic()
    stop: str | None = None  # "too_large" / "timeout": the watchdog ended the job
    committing: bool = False
    lock: threading.Lock = dataclasses.field(default_factory=threading.Lock)

    def halt(self, why: str) -> bool:
        """Stop the job unless its file is being committed already (then it finishes)."""
        with self.lock:
            if self.committing:
                return False
            self.stop = self.stop or why
            return True

    def may_commit(self) -> bool:
        with self.lock:
            if self.stop is None:
                self.committing = True
            return self.committing


@dataclasses.dataclass
class _YtLane:
    proxy: Lane
    folder: Path
    ydl: Any = None
    task: _Task | None = None


class YtdlpPool:
    def __init__(self, cfg: CrawlRecipe, disk: Disk) -> None:
        self.cfg = cfg
        self.disk = disk
        self.out = disk.out
        self.scratch = self.out / "media" / ".tmp-ytdlp"
        self.policy = EgressPolicy.from_config(cfg.polite)
        self._pool = concurrent.futures.ThreadPoolExecutor(
            cfg.ytdlp_threads, thread_name_prefix="yt-dlp"
        )
        self._proxy = EgressProxy(
            self.policy,
            connect_timeout_s=cfg.net.connect_timeout_s,
            read_timeout_s=cfg.net.read_timeout_s,
        )
        self._free: asyncio.Queue[_YtLane] | None = None
        self._starting = asyncio.Lock()

    async def _start(self) -> asyncio.Queue[_YtLane]:
        async with self._starting:
            if self._free is None:
                free: asyncio.Queue[_YtLane] = asyncio.Queue()
                for i, lane in enumerate(await self._proxy.start(self.cfg.ytdlp_threads)):
                    free.put_nowait(_YtLane(lane, self.scratch / f"lane-{i}"))
                self._free = free
        return self._free

    async def aclose(self) -> None:
        """Cut the proxy (so running jobs end at once), then wait for the threads off the
        event loop (the proxy lives on it)."""
        self._proxy.close()
        await asyncio.get_running_loop().run_in_executor(
            None, lambda: self._pool.shutdown(wait=True, cancel_futures=True)
        )
        shutil.rmtree(self.scratch, ignore_errors=True)

    def close(self) -> None:
        """Synchronous close for callers outside the event loop (no proxy connections
        can be served then: running jobs end on their own timeouts)."""
        self._proxy.close()
        self._pool.shutdown(wait=True, cancel_futures=True)
        shutil.rmtree(self.scratch, ignore_errors=True)

    async def download(self, url: str, cid: str) -> Outcome:
        free = await self._start()
        lane = await free.get()
        loop = asyncio.get_running_loop()
        timeout_s = self.cfg.net.total_timeout_s
        # the proxy's budget: the media plus the pages and manifests that lead to it
        job = self._proxy.begin(
            lane.proxy, self.cfg.max_bytes + self.cfg.discover.page_max_bytes, timeout_s
        )
        task = lane.task = _Task(self.cfg.max_bytes, time.monotonic() + timeout_s)
        fut = loop.run_in_executor(self._pool, self._download, lane, task, url, cid)
        fut.add_done_callback(lambda _: free.put_nowait(lane))  # the lane is free once idle
        try:
            out = await self._watch(fut, lane, task)
        except BaseException:
            task.halt("timeout")
            self._proxy.end(lane.proxy)
            raise
        self._proxy.end(lane.proxy)
        out = _judged(out, job)
        out.via = "yt-dlp"
        out.attempts = max(out.attempts, 1)
        return out

    async def _watch(self, fut: asyncio.Future[Outcome], lane: _YtLane, task: _Task) -> Outcome:
        """Wait for the job; stop it when its files outgrow --max-bytes or the deadline
        passes (the thread winds down on its own: its connections are cut)."""
        while True:
            done, _ = await asyncio.wait({fut}, timeout=WATCH_INTERVAL_S)
            if done:
                return fut.result()
            why = None
            if time.monotonic() >= task.deadline:
                why = "timeout"
            elif _folder_bytes(lane.folder) > task.max_bytes:
                why = "too_large"
            if why and task.halt(why):
                self._proxy.end(lane.proxy, over=why)
                return _limit_outcome(why, self.cfg)

    # -- in a worker thread --------------------------------------------------------------

    def _ydl(self, lane: _YtLane) -> Any:
        if lane.ydl is None:
            import yt_dlp

            def hook(status: dict[str, Any]) -> None:
                task = lane.task
                if task is None:
                    return
                done = status.get("downloaded_bytes") or 0
                if done > task.max_bytes:
                    task.halt("too_large")
                elif time.monotonic() >= task.deadline:
                    task.halt("timeout")
                if task.stop:
                    raise _Stop(task.stop)

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
                "fragment_retries": self.cfg.net.retries,
                "proxy": lane.proxy.url,
                "external_downloader": {"default": "native"},
                "hls_prefer_native": True,
                # HLS features the native downloader lacks fall back to ffmpeg, which gets
                # the proxy from yt-dlp (HTTP_PROXY); no local files, no other protocols
                "external_downloader_args": {
                    "ffmpeg_i": ["-protocol_whitelist", _FFMPEG_PROTOCOLS]
                },
                "progress_hooks": [hook],
                "http_headers": {"User-Agent": self.cfg.polite.user_agent},
                "outtmpl": {"default": str(lane.folder / "%(id).60B.%(ext)s")},
                "overwrites": True,
                "continuedl": False,
                "cachedir": False,
                "logger": _Logger(),
            }
            lane.ydl = yt_dlp.YoutubeDL(params)
        return lane.ydl

    def _download(self, lane: _YtLane, task: _Task, url: str, cid: str) -> Outcome:
        import yt_dlp

        ydl = self._ydl(lane)
        shutil.rmtree(lane.folder, ignore_errors=True)
        lane.folder.mkdir(parents=True, exist_ok=True)
        try:
            info = ydl.extract_info(url, download=False)
            if task.stop:
                return _limit_outcome(task.stop, self.cfg)
            info = _first_video(info)
            if info is None:
                return Outcome("ytdlp_error", "yt-dlp: no video in the playlist")
            refused = self._refuse_formats(info)
            if refused is not None:
                return refused
            ydl.process_ie_result(info, download=True)
        except _Stop as exc:
            return _limit_outcome(str(exc), self.cfg)
        except yt_dlp.utils.DownloadError as exc:
            message = _ANSI.sub("", str(exc)).removeprefix("ERROR: ").strip().splitlines()[0][:300]
            if task.stop:
                return _limit_outcome(task.stop, self.cfg)
            return Outcome(classify(message), f"yt-dlp: {message}")
        except Exception as exc:  # yt-dlp's extractors raise anything: one item's failure
            if task.stop:
                return _limit_outcome(task.stop, self.cfg)
            return Outcome("ytdlp_error", f"yt-dlp: {type(exc).__name__}: {str(exc)[:200]}")
        files = [
            p
            for p in lane.folder.rglob("*")
            if p.is_file() and not p.name.endswith((".part", ".ytdl"))
        ]
        if not files:
            return Outcome(
                "too_large", "yt-dlp downloaded nothing (over --max-bytes or no formats)"
            )
        if not task.may_commit():
            return _limit_outcome(task.stop or "timeout", self.cfg)
        path = max(files, key=lambda p: p.stat().st_size)
        return self._commit(path, cid)

    def _refuse_formats(self, info: dict[str, Any]) -> Outcome | None:
        """A refusal when the chosen formats are not plain HTTP downloads, or their URLs
        fail the egress policy (checked again, on the resolved address, by the proxy)."""
        if info.get("is_live"):
            return Outcome("ytdlp_error", "yt-dlp: live streams are not crawled")
        for fmt in info.get("requested_formats") or [info]:
            protocol = str(fmt.get("protocol") or "")
            if protocol not in ALLOWED_PROTOCOLS:
                return Outcome(
                    "ytdlp_error", f"yt-dlp: format protocol {protocol[:40]!r} is not allowed"
                )
            verdict = self.policy.check(str(fmt.get("url") or ""))
            if verdict.reason is not None:
                return Outcome(verdict.reason, f"yt-dlp format: {verdict.message}")
        return None

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


def _first_video(info: Any) -> dict[str, Any] | None:
    """The video of an extraction result (the first entry of a playlist)."""
    while isinstance(info, dict) and info.get("_type") in ("playlist", "multi_video"):
        entries = info.get("entries") or []
        info = next(iter(entries), None)
    return info if isinstance(info, dict) else None


def _folder_bytes(folder: Path) -> int:
    total = 0
    try:
        for path in folder.rglob("*"):
            try:
                total += path.stat().st_size if path.is_file() else 0
            except OSError:
                continue  # renamed or removed meanwhile (yt-dlp moves .part files)
    except OSError:
        return total
    return total


def _limit_outcome(why: str, cfg: CrawlRecipe) -> Outcome:
    if why == "too_large":
        return Outcome("too_large", f"yt-dlp download over --max-bytes ({cfg.max_bytes} bytes)")
    return Outcome("timeout", f"yt-dlp download past the deadline ({cfg.net.total_timeout_s}s)")


def _judged(out: Outcome, job: Job) -> Outcome:
    """yt-dlp's outcome, corrected by what the proxy saw: a refused request or a limit
    is the reason a failed job failed (yt-dlp itself only sees a 403 or a cut)."""
    if out.reason is None:
        return out
    if job.refused is not None:
        reason, message = job.refused
        return Outcome(reason, f"yt-dlp request refused: {message}", attempts=out.attempts)
    if job.over is not None and out.reason not in ("too_large", "timeout"):
        cut = "byte budget spent" if job.over == "too_large" else "deadline passed"
        return Outcome(
            job.over, f"yt-dlp download cut by the egress proxy: {cut}", attempts=out.attempts
        )
    return out
