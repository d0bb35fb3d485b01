"""Discovery mode: walk a stock site's listing pages and clip pages → Items.

Takes the start URL(s), the recipe's ``[discover]`` section, the run's Fetcher (so pages
get the same robots, opt-out, rate-limit, retry and address checks as media) and the set of
clip ids already done; produces an async stream of :class:`~webvid.crawl.items.Item`, one
per clip page: its media URL and caption as extracted, the page's opt-out signals (response
and ``<meta>``, decided for the crawl's purpose: a clip page that opts out skips its item, as
its caption is the page's own text), or the reason it has none (page 404, robots-disallowed,
opt-out, no media found).

Which pages are followed: ``rel=next`` links and, with a recipe, links matching
``follow_patterns``/``item_patterns`` (or the ``select.item_links``/``select.next``
selectors); without one, every same-host link that does not look like a media or asset
file. Pages stay on the start URLs' hosts plus ``allowed_hosts``; media may live anywhere
(CDNs), still under robots and address checks. A clip page is a page matching
``item_patterns`` — or, without patterns, one with a JSON-LD/OpenGraph/hydration video or
exactly one usable ``<video>`` (:func:`webvid.crawl.extract.is_clip_page`). Clip ids come
from ``id_pattern`` or the last path segment of the clip page URL.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from collections.abc import AsyncIterator, Callable, Container
from urllib.parse import urlsplit

from webvid.contract import clip_id
from webvid.crawl import egress, extract, media, optout, optout_collect
from webvid.crawl.egress import canonical_host
from webvid.crawl.fetch import Fetcher
from webvid.crawl.idset import IdSet
from webvid.crawl.items import Item, Outcome
from webvid.crawl.recipe import CrawlRecipe
from webvid.crawl.tasks import WorkerWatch

log = logging.getLogger(__name__)

_ASSET_EXTS = (
    media.MEDIA_EXTS
    | media.MANIFEST_EXTS
    | {"css", "js", "svg", "ico", "pdf", "zip", "xml", "json", "txt", "woff", "woff2"}
)


class Discoverer:
    def __init__(
        self,
        cfg: CrawlRecipe,
        fetcher: Fetcher,
        start: str,
        done: Container[str],
        listed: Callable[[str, str, str | None], Outcome | None] | None = None,
    ) -> None:
        self.cfg = cfg
        #: ``listed(page_url, clip_id, source_id)``: the outcome of a page on an exclude list
        self.listed = listed
        self.d = cfg.discover
        self.fetcher = fetcher
        self.starts = [start, *[u for u in self.d.start_urls if u != start]]
        # canonical names (egress.canonical_host), as the fetcher's host check compares them
        self.hosts = frozenset(
            {canonical_host(egress.host_of(u)) for u in self.starts}
            | {canonical_host(h) for h in self.d.allowed_hosts}
        )
        try:
            self.follow = [re.compile(p) for p in self.d.follow_patterns]
            self.item = [re.compile(p) for p in self.d.item_patterns]
            self.id_re = re.compile(self.d.id_pattern) if self.d.id_pattern else None
        except re.error as exc:
            from webvid.errors import ConfigError

            raise ConfigError(f"discover: bad regular expression: {exc}") from None
        self.done = done
        self.visited = IdSet()  # page URLs, up to max_pages of them: ~8 bytes each
        self.frontier: asyncio.Queue[str] = asyncio.Queue()
        self.out: asyncio.Queue[Item | None] = asyncio.Queue(maxsize=64)
        self.index = 0
        self.stats = {"pages": 0, "pages_failed": 0, "skipped_done": 0}

    # -- classification ------------------------------------------------------------------

    def is_item_url(self, url: str) -> bool | None:
        """True/False with recipe patterns; None when only the page content can tell."""
        if not self.item:
            return None
        return any(p.search(url) for p in self.item)

    def clip_id_for(self, url: str) -> tuple[str, str]:
        """``(clip_id, source_id)`` of a clip page URL."""
        if self.id_re and (m := self.id_re.search(url)):
            sid = m.group(1) if m.groups() else m.group(0)
        else:
            segments = [s for s in urlsplit(url).path.split("/") if s]
            sid = segments[-1] if segments else urlsplit(url).netloc
            if "." in sid and sid.rsplit(".", 1)[-1].lower() in ("html", "htm", "php", "aspx"):
                sid = sid.rsplit(".", 1)[0]
        return clip_id(source_id=sid), sid

    def _wanted(self, url: str, is_next: bool) -> bool:
        if canonical_host(egress.host_of(url)) not in self.hosts:
            return False
        if is_next:
            return True
        if self.follow or self.item:
            return any(p.search(url) for p in (*self.follow, *self.item))
        return media.url_ext(url) not in _ASSET_EXTS

    def _enqueue(self, url: str) -> None:
        if len(self.visited) >= self.d.max_pages or not self.visited.add(url):
            return
        self.frontier.put_nowait(url)

    # -- crawling ------------------------------------------------------------------------

    async def items(self) -> AsyncIterator[Item]:
        for url in self.starts:
            self._enqueue(url)
        workers = [asyncio.create_task(self._page_worker()) for _ in range(self.d.page_concurrency)]

        async def closer() -> None:
            await self.frontier.join()
            await self.out.put(None)

        close = asyncio.create_task(closer())
        watch = WorkerWatch(workers)
        try:
            while True:
                watch.check()
                try:
                    item = self.out.get_nowait()
                except asyncio.QueueEmpty:
                    item = await watch.wait_for(self.out.get())
                if item is None:
                    return
                yield item
        finally:
            for task in (*workers, close):
                task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.gather(*workers, close, return_exceptions=True)

    async def _page_worker(self) -> None:
        while True:
            url = await self.frontier.get()
            try:
                await self._visit(url)
            finally:
                self.frontier.task_done()

    def _emit_item(self, url: str, **fields: object) -> Item:
        cid, sid = self.clip_id_for(url)
        item = Item(
            clip_id=cid,
            source=self.starts[0],
            source_index=self.index,
            page_url=url,
            source_id=sid,
            **fields,
        )  # type: ignore[arg-type]
        self.index += 1
        return item

    async def _visit(self, url: str) -> None:
        is_item = self.is_item_url(url)
        if is_item and self.clip_id_for(url)[0] in self.done:
            self.stats["skipped_done"] += 1
            return  # finished by an earlier run: not even its page is fetched again
        if self.listed is not None and is_item is not False:
            taken = self.listed(url, *self.clip_id_for(url))
            if taken is not None:  # taken down: its page is never fetched
                await self.out.put(self._emit_item(url, failed=taken))
                return
        out, text, final = await self.fetcher.get_page(url, hosts=self.hosts)
        self.stats["pages"] += 1
        if text is None:
            self.stats["pages_failed"] += 1
            log.debug("page %s: %s", url, out.message)
            if is_item:
                await self.out.put(self._emit_item(url, failed=out))
            return
        doc = extract.parse_html(text, final)
        clip, n_videos = extract.extract_clip(doc, dict(self.d.select))
        if is_item or (is_item is None and extract.is_clip_page(clip, n_videos)):
            item = self._clip_item(url, doc, clip, out)
            await self.out.put(item)
        self._follow_links(doc)

    def _clip_item(self, url: str, doc: extract.Doc, clip: extract.Clip, page: Outcome) -> Item:
        extra = clip.extra()  # found_by, every caption candidate, and why each choice
        item = self._emit_item(
            url,
            media_url=clip.media_url,
            caption=clip.caption,
            description=clip.description,
            keywords=clip.keywords,
            duration_s=clip.duration_s,
            width=clip.width,
            height=clip.height,
            thumbnail_url=clip.thumbnail_url,
            extra=extra,
        )
        # the response's signals and the page's <meta> ones, decided together (TDMRep: a
        # meta value supersedes the header's)
        item.signals = page.signals + optout_collect.page_signals(
            doc,
            token=self.cfg.polite.robots_token,
            robots_meta=self.cfg.polite.obey_x_robots_tag,
        )
        decision = optout.decide(item.signals, self.cfg.polite.purpose)
        if decision.deny:
            item.failed = Outcome(
                decision.reason,
                decision.message,
                http_status=page.http_status,
                content_type=page.content_type,
                attempts=page.attempts or 1,
            )
        elif not clip.media_url:
            item.failed = Outcome(
                "no_media_found",
                "no JSON-LD, OpenGraph, usable <video> or hydration media on the page",
                attempts=1,
            )
        return item

    def _follow_links(self, doc: extract.Doc) -> None:
        found = extract.links(doc)
        for key in ("next", "item_links"):
            spec = self.d.select.get(key)
            if spec:
                css, _, attr = spec.partition("@")
                for el in extract.select(doc, css):
                    url = doc.abs(el.attrs.get(attr or "href"))
                    if url and canonical_host(egress.host_of(url)) in self.hosts:
                        self._enqueue(url)
        for url, is_next in found:
            if self._wanted(url, is_next):
                self._enqueue(url)
