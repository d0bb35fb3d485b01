"""Screenshots of every `webvid browse` page, for docs/browse.md and the README.

Method: open a data root (a `webvid demo` output), serve it in-process on loopback, drive
headless Chromium over the DevTools protocol (tests/browse/cdp.py), wait for each page's
content and its clips' first frames, capture the viewport (Page.captureScreenshot) and save it
as a palette PNG (128 colours) to keep the files small.

Usage: python benchmarks/browse_screenshots.py DEMO_OUT [--out docs/img]
"""

from __future__ import annotations

import argparse
import asyncio
import io
import sys
from pathlib import Path

from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.browse.cdp import Page, browser, chromium_path
from webvid import query as q
from webvid.browse.catalog import open_root
from webvid.browse.server import serve

FRAMES_READY = (
    "[...document.querySelectorAll('video')].every(v => v.readyState >= 2)"
    " && [...document.querySelectorAll('img')].every(i => i.complete)"
)


def _pages(root: Path) -> dict[str, str]:
    con = q.open_readonly(root)
    dup = con.execute(
        "SELECT clip_id FROM verdicts WHERE reason = 'duplicate_near' AND media_kind = 'video'"
        " ORDER BY clip_id LIMIT 1"
    ).fetchone()
    videos = open_root(root)
    src = next(i for i, s in enumerate(videos.sources) if s.endswith("videos/verdicts.parquet"))
    return {
        "overview": "#/overview",
        "samples": f"#/samples?src={src}&status=kept",
        "threshold": f"#/threshold?src={src}&name=min_motion&value=0.0065",
        "detail": f"#/sample/{src}/{dup[0]}" if dup else "#/samples?status=rejected",
        "search": "#/search?q=a%20red%20circle%20moving%20left",
        "sql": "#/sql?q=SELECT%20status%2C%20reason%2C%20count(*)%20AS%20n%20FROM%20items"
        "%20GROUP%20BY%20ALL%20ORDER%20BY%20n%20DESC",
    }


async def _shoot(page: Page, url: str, out: Path) -> None:
    await page.navigate(url)
    await page.wait_for("!document.getElementById('app').textContent.startsWith('Loading')", 60)
    await page.evaluate(
        "document.querySelectorAll('video').forEach(v => { v.preload = 'auto'; v.currentTime = 1; })"
    )
    try:
        await page.wait_for(FRAMES_READY, 20)
    except TimeoutError:
        pass
    await asyncio.sleep(2.0)
    raw = out.with_suffix(".raw.png")
    await page.screenshot(raw, width=1100, height=720)
    img = Image.open(io.BytesIO(raw.read_bytes())).convert("RGB")
    raw.unlink()
    img.quantize(colors=128).save(out, optimize=True)
    print(f"{out}  {out.stat().st_size // 1024} KiB")


async def main(root: Path, out: Path) -> None:
    binary = chromium_path()
    if binary is None:
        raise SystemExit("chromium not installed (make setup installs it)")
    out.mkdir(parents=True, exist_ok=True)
    pages = _pages(root)
    async with serve(open_root(root)) as url, browser(binary) as page:
        for name, frag in pages.items():
            await _shoot(page, f"{url}/{frag}", out / f"browse-{name}.png")


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("root", type=Path)
    ap.add_argument("--out", type=Path, default=Path("docs/img"))
    args = ap.parse_args()
    asyncio.run(main(args.root, args.out))
