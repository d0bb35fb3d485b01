"""The browser pages in a real headless Chromium (Debian's package), over the DevTools protocol.

Each check drives the page as a user would — hash routes, forms — and reads the DOM: the grid
renders and a clip plays (its ``currentTime`` advances), filters change the count, search
returns the planted clip, a threshold shows the expected newly-dropped clips, and a
path-traversal fetch from the page gets 404. Skipped only when no chromium is installed
(``make setup`` installs it).
"""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from tests.browse.cdp import Page, browser, chromium_path
from tests.browse.conftest import PLANTED_CLIP, PLANTED_QUERY
from webvid import contract
from webvid.browse.catalog import open_root
from webvid.browse.server import serve

CHROMIUM = chromium_path()
pytestmark = [
    pytest.mark.skipif(CHROMIUM is None, reason="chromium not installed (make setup installs it)"),
    pytest.mark.timeout(180),
]


async def _count(page: Page) -> int:
    await page.wait_for("document.getElementById('count') !== null")
    return int(await page.evaluate("document.getElementById('count').dataset.total"))


async def test_pages_in_chromium(data_root: Path) -> None:
    root = open_root(data_root)
    async with serve(root) as url, browser(CHROMIUM) as page:
        # the grid renders and a clip plays in place
        await page.navigate(f"{url}/#/samples?status=kept")
        await page.wait_for("document.querySelectorAll('#grid video').length === 5")
        played = await page.evaluate(
            """(async () => {
                 const v = document.querySelector('#grid video');
                 v.muted = true; await v.play(); const t0 = v.currentTime;
                 await new Promise(r => setTimeout(r, 1200));
                 return [t0, v.currentTime, v.error ? v.error.code : null];
               })()"""
        )
        assert played[2] is None and played[1] > played[0] + 0.2, played
        # filters change the counts: the form, as a user submits it
        await page.navigate(f"{url}/#/samples")
        assert await _count(page) == 9
        await page.evaluate(
            "document.querySelector('#filters select[name=status]').value = 'rejected';"
            "document.querySelector('#filters button').click()"
        )
        await page.wait_for("document.getElementById('count')?.dataset.total === '3'")
        ids = await page.evaluate(
            "[...document.querySelectorAll('#grid .card')].map(c => c.dataset.id)"
        )
        assert sorted(ids) == ["near0", "picture1", "still"]
        # the rejected image is shown as an image, decoded from the bytes served by id
        size = await page.wait_for(
            "(() => { const i = document.querySelector('#grid .card[data-id=picture1] img');"
            " return i && i.complete ? [i.naturalWidth, i.naturalHeight]"
            " : document.querySelector('#grid .card[data-id=picture1]')?.innerHTML; })()"
        )
        assert size == [96, 64], size
        await page.evaluate(
            "document.querySelector('#filters select[name=status]').value = '';"
            "document.querySelector('#filters input[name=q]').value = 'square';"
            "document.querySelector('#filters button').click()"
        )
        await page.wait_for("document.getElementById('count')?.dataset.total === '2'")

        # search returns the planted clip first, as a playable clip
        await page.navigate(f"{url}/#/search?q={PLANTED_QUERY.replace(' ', '%20')}")
        await page.wait_for("document.querySelector('#results .card') !== null", timeout=60)
        first = await page.evaluate(
            "(() => { const c = document.querySelector('#results .card');"
            " return [c.dataset.id, c.querySelector('video') !== null]; })()"
        )
        assert first == [PLANTED_CLIP, True]

        # a threshold change shows the expected newly-dropped clips
        rows = pq.read_table(data_root / "shards" / contract.VERDICTS_NAME).to_pylist()
        kept = sorted((r["motion_score"], r["clip_id"]) for r in rows if r["kept"])
        cut = kept[2][0]
        await page.navigate(f"{url}/#/threshold?src=0&name=min_motion&value={cut!r}")
        await page.wait_for("document.getElementById('dropped') !== null")
        dropped = await page.evaluate(
            "[...document.querySelectorAll('#dropped .card')].map(c => c.dataset.id)"
        )
        assert sorted(dropped) == sorted(c for _, c in kept[:2])
        assert await page.evaluate("document.getElementById('setline').textContent") == (
            f"--set filters.min_motion={cut:g}"
        )

        # detail page: the duplicate pair side by side
        await page.navigate(f"{url}/#/sample/0/near0")
        await page.wait_for("document.querySelectorAll('#group .card').length === 2")

        # a path-traversal request from the page gets 404
        statuses = await page.evaluate(
            "Promise.all(['/media/0/..%2F..%2Fetc%2Fpasswd', '/static/..%2F..%2Fpyproject.toml']"
            ".map(u => fetch(u).then(r => r.status)))"
        )
        assert statuses == [404, 404]

        # SQL box: a result table, and a write refused with the sandbox's message
        await page.navigate(f"{url}/#/sql?q=SELECT%20count(*)%20AS%20n%20FROM%20items")
        await page.wait_for("document.querySelector('#result td') !== null")
        assert await page.evaluate("document.querySelector('#result td').textContent") == "9"
        await page.navigate(
            f"{url}/#/sql?q={json.dumps('DROP VIEW items')[1:-1].replace(' ', '%20')}"
        )
        await page.wait_for("document.getElementById('sqlerror') !== null")
