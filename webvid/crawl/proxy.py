"""A policy-enforcing HTTP forward proxy on 127.0.0.1: the only way out for yt-dlp.

Takes the crawl's :class:`~webvid.crawl.egress.EgressPolicy` and timeouts; produces *lanes*,
one listening port each, handed to one ``YoutubeDL`` as its ``proxy`` option. yt-dlp then
sends every request of its own through us — plain ``http://`` ones as absolute-form
requests, ``https://`` ones as ``CONNECT host:port`` tunnels — and each is judged before a
byte leaves the machine:

* the target is checked by the egress policy on its canonical host (scheme, Unicode and
  numeric spellings, private IP literals), then resolved *once* here, forbidden addresses
  dropped, and the connection made to an address that was checked;
* every byte coming back is counted against the lane's current job: over its budget, or
  past its deadline, every connection of the job is cut and new ones are refused, so yt-dlp
  can neither fill the disk nor outlive the request deadline.

A refusal is remembered on the job (reason ``private_address``, ``invalid_url``...), so the
record says why yt-dlp failed. Plain-HTTP requests are forwarded one per connection
(``Connection: close`` both ways): a second request on the same client connection is never
read, so nothing reaches an upstream without being checked.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
from urllib.parse import urlsplit

from webvid.crawl.egress import EgressPolicy, PrivateAddressError

log = logging.getLogger(__name__)

HEAD_MAX_BYTES = 64 * 1024  # request or response head
BODY_MAX_BYTES = 1024 * 1024  # request body yt-dlp may send (a POST of an extractor)
_HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-connection",
        "proxy-authorization",
        "proxy-authenticate",
        "te",
        "trailer",
        "upgrade",
        "host",
    }
)


@dataclasses.dataclass
class Job:
    """What one yt-dlp download may use, and what happened to it."""

    budget_bytes: int
    deadline: float  # loop.time()
    used_bytes: int = 0
    refused: tuple[str, str] | None = None  # (reason, message) of the first refusal
    over: str | None = None  # "too_large" or "timeout" once a limit was hit
    open: bool = True

    def refuse(self, reason: str, message: str) -> None:
        if self.refused is None:
            self.refused = (reason, message)


class Lane:
    """One listening port; at most one job at a time."""

    def __init__(self) -> None:
        self.job: Job | None = None
        self.url = ""
        self.server: asyncio.AbstractServer | None = None
        self.writers: set[asyncio.StreamWriter] = set()

    def cut(self) -> None:
        """Drop every connection of this lane at once (client and upstream sides)."""
        for writer in list(self.writers):
            with contextlib.suppress(Exception):
                writer.transport.abort()
        self.writers.clear()


class EgressProxy:
    def __init__(
        self, policy: EgressPolicy, *, connect_timeout_s: float, read_timeout_s: float
    ) -> None:
        self.policy = policy
        self.connect_timeout_s = connect_timeout_s
        self.read_timeout_s = read_timeout_s
        self.lanes: list[Lane] = []

    async def start(self, n: int) -> list[Lane]:
        for _ in range(n):
            lane = Lane()
            lane.server = await asyncio.start_server(
                lambda r, w, lane=lane: self._serve(lane, r, w),
                host="127.0.0.1",
                port=0,
                limit=HEAD_MAX_BYTES,
            )
            port = lane.server.sockets[0].getsockname()[1]
            lane.url = f"http://127.0.0.1:{port}"
            self.lanes.append(lane)
        return self.lanes

    def close(self) -> None:
        for lane in self.lanes:
            self.end(lane)
            if lane.server is not None:
                lane.server.close()

    def begin(self, lane: Lane, budget_bytes: int, timeout_s: float) -> Job:
        self.end(lane)
        deadline = asyncio.get_running_loop().time() + timeout_s
        lane.job = Job(budget_bytes=budget_bytes, deadline=deadline)
        return lane.job

    def end(self, lane: Lane, over: str | None = None) -> Job | None:
        """Close the lane's job (``over``: the limit that ended it) and its connections."""
        job = lane.job
        if job is not None:
            job.open = False
            if over and job.over is None:
                job.over = over
        lane.cut()
        return job

    # -- one client connection -----------------------------------------------------------

    async def _serve(
        self, lane: Lane, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        job = lane.job
        lane.writers.add(writer)
        loop = asyncio.get_running_loop()
        try:
            if job is None or not job.open:
                await _reply(writer, 403, "no download in progress")
                return
            remaining = job.deadline - loop.time()
            if remaining <= 0:
                job.over = job.over or "timeout"
                await _reply(writer, 504, "request deadline passed")
                return
            try:
                async with asyncio.timeout(remaining):
                    await self._handle(lane, job, reader, writer)
            except TimeoutError:
                if loop.time() >= job.deadline:
                    job.over = job.over or "timeout"
                    if lane.job is job:
                        self.end(lane)
        except (
            OSError,
            EOFError,
            ValueError,
            asyncio.IncompleteReadError,
            asyncio.LimitOverrunError,
        ):
            pass  # the client went away or spoke nonsense: nothing to forward
        except Exception as exc:  # a bug here must not become an unretrieved task error
            log.warning("egress proxy: %s: %s", type(exc).__name__, exc)
        finally:
            lane.writers.discard(writer)
            with contextlib.suppress(Exception):
                writer.transport.abort()

    async def _handle(
        self, lane: Lane, job: Job, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), self.read_timeout_s)
        lines = head.decode("utf-8", "surrogateescape").split("\r\n")[:-2]
        parts = lines[0].split(" ") if lines else []
        if len(parts) != 3:
            await _reply(writer, 400, "bad request line")
            return
        method, target, _version = parts
        headers = [
            tuple(s.strip() for s in line.split(":", 1)) for line in lines[1:] if ":" in line
        ]
        tunnel = method.upper() == "CONNECT"
        if not tunnel and not target.lower().startswith("http://"):
            await _reply(writer, 400, "only absolute http:// requests and CONNECT are proxied")
            return
        verdict = self.policy.check(f"https://{target}/" if tunnel else target)
        if verdict.url is None:
            job.refuse(verdict.reason or "invalid_url", verdict.message)
            await _reply(writer, 403, f"refused by the crawl's egress policy: {verdict.message}")
            return
        port = verdict.url.port or (443 if tunnel else 80)
        upstream = await self._connect(job, verdict.host, port)
        if upstream is None:
            await _reply(writer, 403 if job.refused else 502, "cannot connect")
            return
        up_reader, up_writer = upstream
        lane.writers.add(up_writer)
        try:
            if tunnel:
                writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
                await writer.drain()
                await self._tunnel(lane, job, reader, writer, up_reader, up_writer)
            else:
                body = await self._request_body(headers, reader, writer)
                if body is None:
                    return
                host = verdict.host if ":" not in verdict.host else f"[{verdict.host}]"
                split = urlsplit(target)
                path = (split.path or "/") + (f"?{split.query}" if split.query else "")
                kept = [f"{k}: {v}" for k, v in headers if k.lower() not in _HOP_BY_HOP]
                out_head = "\r\n".join(
                    [
                        f"{method} {path} HTTP/1.1",
                        f"Host: {host}" + (f":{port}" if port != 80 else ""),
                        *kept,
                        "Connection: close",
                        "",
                        "",
                    ]
                )
                up_writer.write(out_head.encode("utf-8", "surrogateescape") + body)
                await up_writer.drain()
                await self._response(lane, job, up_reader, writer)
        finally:
            lane.writers.discard(up_writer)
            up_writer.transport.abort()

    async def _connect(
        self, job: Job, host: str, port: int
    ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter] | None:
        """Resolve once, keep the allowed addresses, connect to the first that answers."""
        try:
            addresses = await asyncio.wait_for(
                self.policy.resolve(host, port), self.connect_timeout_s
            )
        except PrivateAddressError as exc:
            job.refuse("private_address", str(exc))
            return None
        except (OSError, TimeoutError) as exc:
            log.debug("proxy: cannot resolve %s: %s", host, exc)
            return None
        for address in addresses:
            try:
                return await asyncio.wait_for(
                    asyncio.open_connection(address, port, limit=HEAD_MAX_BYTES),
                    self.connect_timeout_s,
                )
            except (OSError, TimeoutError) as exc:
                log.debug("proxy: cannot connect to %s:%d: %s", address, port, exc)
        return None

    async def _request_body(
        self,
        headers: list[tuple[str, ...]],
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
    ) -> bytes | None:
        fields = {k.lower(): v for k, v in headers}
        if "transfer-encoding" in fields:
            await _reply(writer, 411, "chunked request bodies are not proxied")
            return None
        length = fields.get("content-length", "0")
        if not (length.isascii() and length.isdigit()) or int(length) > BODY_MAX_BYTES:
            await _reply(writer, 413, "request body too large")
            return None
        return await reader.readexactly(int(length)) if int(length) else b""

    async def _response(
        self, lane: Lane, job: Job, up_reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        """Relay the upstream response: its head with ``Connection: close``, then the body
        as it comes, counted against the job."""
        head = await asyncio.wait_for(up_reader.readuntil(b"\r\n\r\n"), self.read_timeout_s)
        lines = head.decode("latin-1").split("\r\n")[:-2]
        kept = [
            line
            for line in lines[1:]
            if line.split(":", 1)[0].strip().lower() not in ("connection", "keep-alive")
        ]
        out = "\r\n".join([lines[0], *kept, "Connection: close", "", ""]).encode("latin-1")
        if not self._count(lane, job, len(out)):
            return
        writer.write(out)
        await writer.drain()
        await self._pump(lane, job, up_reader, writer, count=True)

    async def _tunnel(
        self,
        lane: Lane,
        job: Job,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        up_reader: asyncio.StreamReader,
        up_writer: asyncio.StreamWriter,
    ) -> None:
        up = asyncio.ensure_future(self._pump(lane, job, reader, up_writer, count=False))
        down = asyncio.ensure_future(self._pump(lane, job, up_reader, writer, count=True))
        try:
            await asyncio.wait({up, down}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (up, down):
                task.cancel()
            await asyncio.gather(up, down, return_exceptions=True)

    async def _pump(
        self,
        lane: Lane,
        job: Job,
        src: asyncio.StreamReader,
        dst: asyncio.StreamWriter,
        *,
        count: bool,
    ) -> None:
        while True:
            chunk = await asyncio.wait_for(src.read(64 * 1024), self.read_timeout_s)
            if not chunk:
                return
            if lane.job is not job or not job.open:
                return
            if count and not self._count(lane, job, len(chunk)):
                return
            dst.write(chunk)
            await dst.drain()

    def _count(self, lane: Lane, job: Job, n: int) -> bool:
        job.used_bytes += n
        if job.used_bytes > job.budget_bytes:
            self.end(lane, over="too_large")
            return False
        return True


async def _reply(writer: asyncio.StreamWriter, status: int, message: str) -> None:
    body = message.encode("utf-8", "replace")[:2000]
    head = (
        f"HTTP/1.1 {status} {_PHRASES.get(status, 'Error')}\r\n"
        f"Content-Type: text/plain; charset=utf-8\r\nContent-Length: {len(body)}\r\n"
        "Connection: close\r\n\r\n"
    )
    writer.write(head.encode("latin-1") + body)
    with contextlib.suppress(OSError):
        await writer.drain()


_PHRASES = {
    400: "Bad Request",
    403: "Forbidden",
    411: "Length Required",
    413: "Payload Too Large",
    502: "Bad Gateway",
    504: "Gateway Timeout",
}
