"""Discovery-mode page parsing: today's `webvid.crawl.extract` against an earlier revision's.

Takes a page count, a git revision (the baseline) and a repeat count; produces a JSON summary
on stdout and a Markdown table on stderr. Both extractors run in this one process,
interleaved, on the same generated stock-footage pages of 100-300 KB (clip and listing pages,
``benchmarks/stock_pages.py``). Each page gets exactly the work :mod:`webvid.crawl.discover`
does per page: parse, extract the clip, decide whether it is a clip page, read meta robots,
collect links, and (with a recipe) the ``next`` and ``item_links`` selectors. The baseline module is the revision's ``webvid/crawl/extract.py``
loaded from ``git show``; both use today's ``polite``/``items`` modules.

``--libraries`` also times the bare candidate libraries (parse + the same element queries)
when they are importable: selectolax (Lexbor) and lxml + cssselect.

``--hostile`` parses two small hostile pages (deep nesting, a formatting-element bomb) in
child processes, for CPU time and peak memory, with the baseline, today's extractor and Lexbor.

    python benchmarks/extract_bench.py --pages 40 --repeat 5 --libraries --hostile
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
import types
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from stock_pages import make_pages

from webvid.crawl import extract as current

REPO = Path(__file__).resolve().parents[1]
RECIPE = {
    "caption": "h1.clip-title",
    "item_links": "a.clip-card@href",
    "next": "nav.pagination a[rel~=next]@href",
}


def baseline_source(rev: str) -> str:
    return subprocess.run(
        ["git", "show", f"{rev}:webvid/crawl/extract.py"],
        cwd=REPO,
        check=True,
        capture_output=True,
        text=True,
    ).stdout


def load_module(src: str, rev: str) -> types.ModuleType:
    mod = types.ModuleType(f"extract_{rev}")
    mod.__file__ = f"{rev}:webvid/crawl/extract.py"
    sys.modules[mod.__name__] = mod  # dataclasses look their module up there
    exec(compile(src, mod.__file__, "exec"), mod.__dict__)
    return mod


# --------------------------------------------------------------------------------------------
# Passes
# --------------------------------------------------------------------------------------------


def discover_page(mod: types.ModuleType, url: str, text: str, select: dict[str, str]) -> tuple:
    """What ``Discoverer._visit`` and ``_follow_links`` do with one page's text."""
    doc = mod.parse_html(text, url)
    clip, n_videos = mod.extract_clip(doc, dict(select))
    is_clip = mod.is_clip_page(clip, n_videos)
    opt_out = mod.meta_robots_opt_out(doc, "webvid")
    followed = []
    for key in ("next", "item_links"):
        spec = select.get(key)
        if spec:
            css, _, attr = spec.partition("@")
            followed += [doc.abs(el.attrs.get(attr or "href")) for el in mod.select(doc, css)]
    found = mod.links(doc)
    # a page that is not a clip page makes no record, so its caption is never used (since #19
    # the ranked caption rule finds one on listing pages, the earlier extractors none)
    caption = clip.caption if is_clip else None
    return (clip.media_url, caption, is_clip, opt_out, len(found), len(followed))


def one_pass(mod: types.ModuleType, pages: list[tuple[str, str]], select: dict[str, str]) -> tuple:
    wall, cpu = time.perf_counter(), time.process_time()
    out = [discover_page(mod, url, text, select) for url, text in pages]
    return time.perf_counter() - wall, time.process_time() - cpu, out


def library_passes() -> dict[str, Callable[[list[tuple[str, str]]], int]]:
    """Bare libraries: parse, then the element queries the extractor makes."""
    passes: dict[str, Callable[[list[tuple[str, str]]], int]] = {}
    queries = ("a[href], area[href], link[href]", "meta", "script[type]", "video", "img[src]")
    try:
        from selectolax.lexbor import LexborHTMLParser

        def lexbor(pages: list[tuple[str, str]]) -> int:
            total = 0
            for _, t in pages:
                tree = LexborHTMLParser(t)
                total += sum(len(tree.css(q)) for q in queries)
            return total

        passes["selectolax (Lexbor)"] = lexbor
    except ImportError:
        pass
    try:
        from lxml import etree
        from lxml.cssselect import CSSSelector

        selectors = [CSSSelector(q, translator="html") for q in queries]
        parser = etree.HTMLParser(encoding="utf-8")

        def lxml_css(pages: list[tuple[str, str]]) -> int:
            total = 0
            for _, t in pages:
                root = etree.fromstring(t.encode(), parser)
                total += sum(len(sel(root)) for sel in selectors)
            return total

        passes["lxml + cssselect"] = lxml_css
    except ImportError:
        pass
    return passes


# --------------------------------------------------------------------------------------------
# Hostile pages: each parser in a child process, for its CPU time and peak memory
# --------------------------------------------------------------------------------------------

HOSTILE = {
    "deep nesting: <div> x 40,000 (200 KB)": "'<div>' * 40_000 + '<a href=/x>x</a>'",
    "formatting bomb: 200 distinct <b>, then <p>x x 4,000 (17 KB)": (
        "'<p>' + ''.join(f'<b a={i}>' for i in range(200)) + '<p>x' * 4_000"
    ),
}
PARSERS = {  # (set-up, the timed parse)
    "before (html.parser tree)": (
        "import sys, types\n"
        "m = types.ModuleType('before'); sys.modules['before'] = m\n"
        "exec(compile(open(sys.argv[1]).read(), 'before', 'exec'), m.__dict__)",
        "d = m.parse_html(page, 'http://h/'); m.extract_clip(d); m.links(d)",
    ),
    "now (extract)": (
        "from webvid.crawl import extract as m",
        "d = m.parse_html(page, 'http://h/'); m.extract_clip(d); m.links(d)",
    ),
    "selectolax (Lexbor)": (
        "from selectolax.lexbor import LexborHTMLParser",
        "LexborHTMLParser(page)",
    ),
}
CHILD = """
import json, resource, sys, time
{setup}
page = {page}
rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
cpu = time.process_time()
try:
    {parse}
    outcome = "ok"
except RecursionError:
    outcome = "RecursionError"
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({{"cpu_s": time.process_time() - cpu, "peak_mb": (peak - rss) / 1024,
                  "outcome": outcome}}))
"""


def hostile_runs(baseline_src: str, timeout_s: float = 120.0) -> dict[str, dict[str, Any]]:
    """``{case/parser: {cpu_s, peak_mb, outcome}}`` (parsers that do not import are left out)."""
    results: dict[str, dict[str, Any]] = {}
    with tempfile.NamedTemporaryFile("w", suffix=".py") as src:
        src.write(baseline_src)
        src.flush()
        for case, page in HOSTILE.items():
            for name, (setup, parse) in PARSERS.items():
                code = CHILD.format(setup=setup, page=page, parse=parse)
                try:
                    run = subprocess.run(
                        [sys.executable, "-c", code, src.name],
                        capture_output=True,
                        text=True,
                        timeout=timeout_s,
                        cwd=REPO,
                    )
                except subprocess.TimeoutExpired:
                    results[f"{case}/{name}"] = {"outcome": f"killed after {timeout_s:g} s"}
                    continue
                if run.returncode == 0:
                    results[f"{case}/{name}"] = json.loads(run.stdout)
                elif "ModuleNotFoundError" not in run.stderr:
                    results[f"{case}/{name}"] = {"outcome": run.stderr.strip().splitlines()[-1]}
    return results


def _summary(times: dict[str, list[float]], n: int, nbytes: int) -> dict[str, Any]:
    med = statistics.median(times["cpu_s"])
    return {
        "median_cpu_s": med,
        "median_wall_s": statistics.median(times["wall_s"]),
        "pages_per_cpu_s": n / med,
        "mb_per_cpu_s": nbytes / med / 1e6,
        "ms_per_page": 1e3 * med / n,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pages", type=int, default=40)
    ap.add_argument("--baseline", default="51e8299", help="git revision of the baseline extractor")
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--libraries", action="store_true", help="also time the bare libraries")
    ap.add_argument("--hostile", action="store_true", help="also parse two hostile pages")
    args = ap.parse_args()
    pages = make_pages(args.pages)
    sizes = [len(t.encode()) for _, t in pages]
    baseline_src = baseline_source(args.baseline)
    extractors = {"before": load_module(baseline_src, args.baseline), "now": current}
    times: dict[str, dict[str, list[float]]] = {}
    for recipe, select in (("no recipe", {}), ("recipe selectors", RECIPE)):
        answers = {}
        for _ in range(args.repeat):
            for name, mod in extractors.items():  # interleaved: drift hits both alike
                wall, cpu, out = one_pass(mod, pages, select)
                answers[name] = out
                slot = times.setdefault(f"{recipe}/{name}", {"wall_s": [], "cpu_s": []})
                slot["wall_s"].append(wall)
                slot["cpu_s"].append(cpu)
        if answers["before"] != answers["now"]:
            diff = [i for i, (a, b) in enumerate(zip(*answers.values(), strict=True)) if a != b]
            raise SystemExit(f"{recipe}: the extractors disagree on pages {diff[:10]}")
    if args.libraries:
        passes = library_passes()
        for _ in range(args.repeat):
            for name, fn in passes.items():
                wall, cpu = time.perf_counter(), time.process_time()
                fn(pages)
                slot = times.setdefault(f"bare library/{name}", {"wall_s": [], "cpu_s": []})
                slot["wall_s"].append(time.perf_counter() - wall)
                slot["cpu_s"].append(time.process_time() - cpu)
    summary = {k: _summary(v, len(pages), sum(sizes)) for k, v in times.items()}
    hostile = hostile_runs(baseline_src) if args.hostile else {}
    page_kb = [min(sizes) / 1e3, statistics.median(sizes) / 1e3, max(sizes) / 1e3]
    report = {"pages": len(pages), "page_kb_min_median_max": page_kb, "baseline": args.baseline}
    report |= {"repeat": args.repeat, "results": summary, "hostile": hostile}
    print(json.dumps(report, indent=2))
    print_tables(summary, hostile)


def print_tables(summary: dict[str, dict[str, Any]], hostile: dict[str, dict[str, Any]]) -> None:
    err = sys.stderr
    print("| pass | extractor | ms CPU per page | pages per CPU-s | now / before |", file=err)
    print("| --- | --- | ---: | ---: | ---: |", file=err)
    for key, s in summary.items():
        recipe, name = key.split("/", 1)
        base = summary.get(f"{recipe}/before")
        ratio = f"{base['median_cpu_s'] / s['median_cpu_s']:.1f}×" if base else "—"
        print(
            f"| {recipe} | {name} | {s['ms_per_page']:.2f} | {s['pages_per_cpu_s']:,.1f} | "
            f"{ratio} |",
            file=err,
        )
    if hostile:
        print("\n| hostile page | parser | CPU s | peak memory MB | outcome |", file=err)
        print("| --- | --- | ---: | ---: | --- |", file=err)
        for key, r in hostile.items():
            case, name = key.split("/", 1)
            cpu, mb = r.get("cpu_s"), r.get("peak_mb")
            print(
                f"| {case} | {name} | {'—' if cpu is None else f'{cpu:.2f}'} | "
                f"{'—' if mb is None else f'{mb:,.0f}'} | {r['outcome']} |",
                file=err,
            )


if __name__ == "__main__":
    main()
