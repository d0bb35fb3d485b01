"""Crawl throughput and memory on loopback: webvid crawl vs a naive thread-pool baseline.

Takes sizes from the command line; produces a JSON summary on stdout (and a Markdown table
with --markdown). A loopback server runs in a *separate process* and serves N clips of
~100 KB (fake MP4 bodies: an ``ftyp`` box, then an ``mdat`` box of bytes unique to each clip), listing pages with
``rel=next`` and clip pages with JSON-LD for discovery mode, and optionally answers 5 % of
first requests with 503.

Every measured run is its own child process (``python -m webvid.cli crawl ...``, or the
baseline), timed from spawn to exit — so items/s are wall-clock *with* interpreter start-up —
and its peak RSS is polled with psutil (children included). Measurements:

* list mode (a CSV of N URLs), median of --repeat runs, per-host limits raised;
* discovery mode (start URL → listing pages → clip pages → media);
* the naive baseline in the same session: a ThreadPoolExecutor of ``urllib`` GETs writing
  files (img2dataset's approach, 64 threads);
* the same list with 5 % of responses answered 503: every item must end as success and every
  stored file must be the real clip (sha256 of the served body), never an error page;
* a 1,000,000-row table crawled with ``--limit 1000``: peak RSS;
* with ``--before-src DIR`` (a checkout of an earlier webvid, e.g. ``git archive``), the same
  list crawl run from that tree too, interleaved: before/after in the same conditions;
* with ``--latency-ms MS`` (a separate, clearly labelled variant): a second server holds
  every media response MS milliseconds before its first byte, as a remote CDN's time to
  first byte would; the crawl runs with ``--latency-concurrency`` connections and the
  baseline with 64 threads and with the same number of threads as the crawl's connections.

Outputs stay on disk until the end of the script. Deleting 200 MB of files between runs
made the next run's file creations slow on this VM's ext4 (the kernel skips inodes freed in
the last ~30 s, scanning the inode table: ``recently_deleted`` was a third of all CPU samples
in ``perf``), which inflated both sides' system time and the spread. Children keep their
compiled bytecode in the script's temp folder (filled once, unmeasured), as an installed
package would; ``--no-bytecode-cache`` gives the old condition (this VM exports
PYTHONDONTWRITEBYTECODE=1, so every run recompiled webvid's modules, ~50 ms).

Usage: nice .venv/bin/python benchmarks/crawl_bench.py [--n 2000] [--repeat 3] [--markdown]
       [--before-src DIR] [--latency-ms 100 --latency-concurrency 512]
"""

from __future__ import annotations

import argparse
import concurrent.futures
import hashlib
import json
import multiprocessing
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import psutil

REPO = str(Path(__file__).resolve().parent.parent)
CLIP_BYTES = 100_000
PAGE_SIZE = 50
FAST = [
    "--allow-private",
    "--concurrency",
    "64",
    "--per-host-concurrency",
    "64",
    "--per-host-rps",
    "100000",
    "--set",
    "polite.per_host_burst=100000",
    "--set",
    "net.backoff_base_s=0.05",
    "--set",
    "net.retries=4",
]


def clip_body(i: int) -> bytes:
    """A structurally valid MP4 (``ftyp`` box, then one ``mdat`` box over the rest: the crawler
    walks the box headers) whose payload is unique to clip ``i``."""
    ftyp = b"\x00\x00\x00\x18ftypisom\x00\x00\x02\x00isomiso2"
    seed = hashlib.sha256(str(i).encode()).digest()
    payload = seed * ((CLIP_BYTES - len(ftyp) - 8) // len(seed))
    return ftyp + (len(payload) + 8).to_bytes(4, "big") + b"mdat" + payload


# --------------------------------------------------------------------------------------------
# The server (separate process)
# --------------------------------------------------------------------------------------------


def serve(port_q: multiprocessing.Queue, n: int, fail_pct: int, delay_ms: int = 0) -> None:
    """A lean HTTP/1.1 server (asyncio protocol, keep-alive): it must not be the bottleneck.

    Routes: /robots.txt, /cdn/<i>.mp4, /videos/page/<p> (listing, rel=next), /clip/<i>
    (a clip page with JSON-LD and <video>). Anything else: 404. With ``delay_ms``, each
    /cdn/ response is sent that long after its request arrived (time to first byte).
    """
    import asyncio

    try:
        import uvloop

        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    except ImportError:
        pass
    hits: dict[int, int] = {}
    bodies: dict[int, bytes] = {}

    def response(status: str, ctype: str, body: bytes, close: bool) -> bytes:
        head = (
            f"HTTP/1.1 {status}\r\nContent-Type: {ctype}\r\nContent-Length: {len(body)}\r\n"
            f"Connection: {'close' if close else 'keep-alive'}\r\n\r\n"
        )
        return head.encode() + body

    def route(path: str) -> tuple[str, str, bytes]:
        if path.startswith("/cdn/") and path.endswith(".mp4"):
            i = int(path[5:-4])
            hits[i] = hits.get(i, 0) + 1
            if fail_pct and i % 100 < fail_pct and hits[i] == 1:
                return "503 Service Unavailable", "text/html", b"<html>busy, try later</html>" * 20
            body = bodies.get(i) or bodies.setdefault(i, clip_body(i))
            return "200 OK", "video/mp4", body
        if path.startswith("/videos/page/"):
            p = int(path.rsplit("/", 1)[1])
            ids = range(p * PAGE_SIZE, min(n, (p + 1) * PAGE_SIZE))
            links = "".join(f'<a class="clip-link" href="/clip/{i}">clip {i}</a>\n' for i in ids)
            nxt = (
                f'<link rel="next" href="/videos/page/{p + 1}">' if (p + 1) * PAGE_SIZE < n else ""
            )
            return (
                "200 OK",
                "text/html",
                f"<html><head>{nxt}</head><body>{links}</body></html>".encode(),
            )
        if path.startswith("/clip/"):
            i = int(path[6:])
            ld = json.dumps(
                {
                    "@context": "https://schema.org",
                    "@type": "VideoObject",
                    "name": f"clip {i} moving left",
                    "contentUrl": f"/cdn/{i}.mp4",
                    "duration": "PT0H0M4S",
                    "width": 320,
                    "height": 240,
                }
            )
            html = (
                f'<html><head><title>clip {i}</title><script type="application/ld+json">{ld}</script></head>'
                f'<body><h1>clip {i}</h1><video poster="/t/{i}.jpg"><source src="/cdn/{i}.mp4" type="video/mp4">'
                f'</video><img src="/t/{i}.jpg" alt="clip {i} moving left"><a href="/videos/page/0">all</a></body></html>'
            )
            return "200 OK", "text/html", html.encode()
        if path == "/robots.txt":
            return "200 OK", "text/plain", b"User-agent: *\nDisallow: /private/\n"
        return "404 Not Found", "text/plain", b"not found"

    class Http(asyncio.Protocol):
        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            self.t = transport
            self.buf = b""

        def data_received(self, data: bytes) -> None:
            self.buf += data
            while b"\r\n\r\n" in self.buf:
                head, self.buf = self.buf.split(b"\r\n\r\n", 1)
                lines = head.decode("latin-1").split("\r\n")
                path = lines[0].split(" ")[1]
                close = any(
                    h.lower().startswith("connection:") and "close" in h.lower() for h in lines[1:]
                )
                data = response(*route(path), close)
                if delay_ms and path.startswith("/cdn/"):
                    # a client sends its next request on this connection only after this
                    # answer, so delaying it keeps the responses in order
                    asyncio.get_running_loop().call_later(delay_ms / 1000, self.send, data, close)
                    if close:
                        return
                    continue
                self.send(data, close)
                if close:
                    return

        def send(self, data: bytes, close: bool) -> None:
            if self.t.is_closing():
                return
            self.t.write(data)  # type: ignore[attr-defined]
            if close:
                self.t.close()

    async def main() -> None:
        server = await asyncio.get_running_loop().create_server(Http, "127.0.0.1", 0, backlog=1024)
        port_q.put(server.sockets[0].getsockname()[1])
        await asyncio.Event().wait()

    asyncio.run(main())


class Server:
    def __init__(self, n: int, fail_pct: int = 0, delay_ms: int = 0) -> None:
        q: multiprocessing.Queue = multiprocessing.Queue()
        self.proc = multiprocessing.Process(
            target=serve, args=(q, n, fail_pct, delay_ms), daemon=True
        )
        self.proc.start()
        self.url = f"http://127.0.0.1:{q.get(timeout=60)}"

    def close(self) -> None:
        self.proc.terminate()
        self.proc.join(10)


# --------------------------------------------------------------------------------------------
# Measured child processes
# --------------------------------------------------------------------------------------------


#: Set by main(): child processes keep compiled bytecode under this folder, as an installed
#: package has it (this VM's shells export PYTHONDONTWRITEBYTECODE=1, under which every run
#: recompiled webvid's own modules: ~50 ms of each crawl's start-up).
PYCACHE: str | None = None


def child_env() -> dict[str, str]:
    env = dict(os.environ, WEBVID_NO_PROGRESS="1", PYTHONHASHSEED="0")
    if PYCACHE:
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        env["PYTHONPYCACHEPREFIX"] = PYCACHE
    return env


def warm_bytecode(cwd: str | None) -> None:
    """Fill the bytecode cache for one source tree (unmeasured)."""
    mods = "webvid.cli, webvid.crawl.run, webvid.crawl.multi, "
    mods += "webvid.crawl.discover, uvloop, urllib.request, concurrent.futures"
    # the crawl command's module: webvid/cli/crawl.py, or webvid/crawl/cli.py in older trees
    command = (
        "import importlib\n"
        "try:\n    importlib.import_module('webvid.cli.crawl')\n"
        "except ImportError:\n    importlib.import_module('webvid.crawl.cli')"
    )
    subprocess.run(
        [sys.executable, "-c", f"import {mods}\n{command}"],
        env=child_env(),
        cwd=cwd or REPO,
        check=True,
    )


def measure(cmd: list[str], cwd: str | None = None) -> dict[str, float]:
    """Wall seconds from spawn to exit and peak RSS (MB) of the process tree. ``cwd``: the
    source tree ``python -m webvid.cli`` imports webvid from (sys.path[0] is the cwd)."""
    env = child_env()
    r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    proc = subprocess.Popen(
        cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd=cwd or REPO
    )
    ps = psutil.Process(proc.pid)
    peak = peak_pss = 0
    while proc.poll() is None:
        try:
            tree = [ps, *ps.children(recursive=True)]
            peak = max(peak, sum(p.memory_info().rss for p in tree))
            # PSS splits pages shared by forked workers between them: the tree's real footprint
            peak_pss = max(peak_pss, sum(p.memory_full_info().pss for p in tree))
        except (psutil.Error, AttributeError):
            pass
        time.sleep(0.02)
    wall = time.perf_counter() - t0
    r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        raise RuntimeError(f"{cmd[:4]} failed: {proc.stderr.read().decode()[-2000:]}")
    cpu = (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)
    return {"wall_s": wall, "peak_rss_mb": peak / 1e6, "peak_pss_mb": peak_pss / 1e6, "cpu_s": cpu}


def crawl_cmd(source: str, out: Path, *extra: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "webvid.cli",
        "-q",
        "crawl",
        str(Path(source).resolve()) if not source.startswith("http") else source,
        "-o",
        str(Path(out).resolve()),
        *FAST,
        *extra,
    ]


def baseline_cmd(table: Path, out: Path, threads: int) -> list[str]:
    return [sys.executable, __file__, "_baseline", str(table), str(out), str(threads)]


def check_list(out: Path, n: int) -> None:
    recs = records(out)
    assert len(recs) == n and all(x["status"] == "success" for x in recs), len(recs)


def baseline_child(table: str, out: str, threads: int) -> None:
    """img2dataset's approach: a thread pool of blocking urllib GETs, one file per item."""
    os.makedirs(out, exist_ok=True)
    with open(table) as fh:
        next(fh)
        rows = [line.strip().split(",", 1) for line in fh if line.strip()]

    def get(row: list[str]) -> bool:
        cid, url = row
        try:
            with urllib.request.urlopen(url, timeout=10) as resp:
                data = resp.read()
            with open(os.path.join(out, f"{cid}.mp4"), "wb") as f:
                f.write(data)
            return True
        except OSError:
            return False

    with concurrent.futures.ThreadPoolExecutor(threads) as pool:
        ok = sum(pool.map(get, rows))
    if ok != len(rows):
        raise SystemExit(f"baseline: {len(rows) - ok} failures")


def records(out: Path) -> list[dict]:
    import pyarrow.parquet as pq

    return [
        r
        for p in sorted((out / "records").glob("part-*.parquet"))
        for r in pq.read_table(p).to_pylist()
    ]


# --------------------------------------------------------------------------------------------
# Main
# --------------------------------------------------------------------------------------------


def write_table(path: Path, base: str, n: int) -> Path:
    with open(path, "w") as fh:
        fh.write("id,url\n")
        for i in range(n):
            fh.write(f"c{i},{base}/cdn/{i}.mp4\n")
    return path


def summarise_runs(result: dict, runs: dict[str, list[dict[str, float]]], n: int) -> None:
    mb = n * CLIP_BYTES / 1e6
    for name, ms in runs.items():
        if not ms:
            continue
        wall = statistics.median(m["wall_s"] for m in ms)
        cpu = statistics.median(m["cpu_s"] for m in ms)
        result[name] = {
            "items_per_s": round(n / wall, 1),
            "mb_per_s": round(mb / wall, 1),
            "wall_s": round(wall, 2),
            "peak_rss_mb": round(max(m["peak_rss_mb"] for m in ms), 1),
            "peak_pss_mb": round(max(m["peak_pss_mb"] for m in ms), 1),
            "cpu_ms_per_item": round(1000 * cpu / n, 3),
            "walls": [round(m["wall_s"], 2) for m in ms],
            "cpus": [round(m["cpu_s"], 2) for m in ms],
        }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=2000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--big-rows", type=int, default=1_000_000)
    ap.add_argument("--markdown", action="store_true")
    ap.add_argument(
        "--skip",
        default="",
        help="comma list of: list,list_2proc,discover,baseline,faults,big,list_before",
    )
    ap.add_argument(
        "--before-src",
        default=None,
        help="an earlier webvid source tree: its list crawl runs interleaved as list_before",
    )
    ap.add_argument(
        "--latency-ms",
        type=int,
        default=0,
        help="also run the latency variant: media answers held this long (0: skip it)",
    )
    ap.add_argument("--latency-concurrency", type=int, default=512)
    ap.add_argument(
        "--no-bytecode-cache",
        action="store_true",
        help="children inherit PYTHONDONTWRITEBYTECODE (recompile webvid every run)",
    )
    args = ap.parse_args()
    skip = set(filter(None, args.skip.split(",")))
    if not args.before_src:
        skip.add("list_before")
    work = Path(tempfile.mkdtemp(prefix="webvid-crawl-bench-"))
    global PYCACHE
    if not args.no_bytecode_cache:
        PYCACHE = str(work / "pycache")
        for tree in {None, args.before_src}:
            warm_bytecode(tree)
    result: dict[str, object] = {
        "bytecode_cache": PYCACHE is not None,
        "n": args.n,
        "clip_bytes": CLIP_BYTES,
        "repeat": args.repeat,
        "cpus": os.cpu_count(),
        "date": time.strftime("%Y-%m-%d"),
        "load_avg_start": os.getloadavg()[0],
    }
    try:
        server = Server(args.n)
        table = write_table(work / "list.csv", server.url, args.n)
        runs: dict[str, list[dict[str, float]]] = {
            "list": [],
            "list_before": [],
            "list_2proc": [],
            "discover": [],
            "baseline": [],
        }
        variants: list[tuple[str, list[str], str | None]] = [
            ("list", [], None),
            ("list_before", [], args.before_src),
            ("list_2proc", ["--processes", "2"], None),
        ]
        for r in range(args.repeat):  # interleaved, so load changes hit every variant alike
            for name, extra, cwd in variants:
                if name in skip:
                    continue
                out = work / f"{name}{r}"
                runs[name].append(measure(crawl_cmd(str(table), out, *extra), cwd=cwd))
                check_list(out, args.n)
            if "baseline" not in skip:
                runs["baseline"].append(measure(baseline_cmd(table, work / f"base{r}", 64)))
            if "discover" not in skip:
                out = work / f"disc{r}"
                m = measure(
                    crawl_cmd(
                        server.url + "/videos/page/0",
                        out,
                        "--set",
                        'discover.item_patterns=["/clip/\\\\d+$"]',
                        "--set",
                        'discover.follow_patterns=["/videos/page/\\\\d+$"]',
                        "--set",
                        "discover.page_concurrency=32",
                    )
                )
                check_list(out, args.n)
                runs["discover"].append(m)
        server.close()
        summarise_runs(result, runs, args.n)
        for name in ("list", "list_before", "list_2proc"):
            if runs[name] and runs["baseline"]:
                result[f"{name}_vs_baseline"] = round(
                    result["baseline"]["wall_s"] / result[name]["wall_s"], 2
                )  # type: ignore[index]

        if args.latency_ms:
            c = args.latency_concurrency
            server = Server(args.n, delay_ms=args.latency_ms)
            table = write_table(work / "latency.csv", server.url, args.n)
            lat: dict[str, list[dict[str, float]]] = {
                f"latency_list_c{c}": [],
                f"latency_list_before_c{c}": [],
                "latency_baseline_t64": [],
                f"latency_baseline_t{c}": [],
            }
            wide = ["--concurrency", str(c), "--per-host-concurrency", str(c)]
            for r in range(args.repeat):
                for name, cwd in (
                    (f"latency_list_c{c}", None),
                    (f"latency_list_before_c{c}", args.before_src),
                ):
                    if "before" in name and "list_before" in skip:
                        continue
                    out = work / f"{name}{r}"
                    lat[name].append(measure(crawl_cmd(str(table), out, *wide), cwd=cwd))
                    check_list(out, args.n)
                for threads in (64, c):
                    lat[f"latency_baseline_t{threads}"].append(
                        measure(baseline_cmd(table, work / f"lat_base{threads}_{r}", threads))
                    )
            server.close()
            summarise_runs(result, lat, args.n)
            result["latency_ms"] = args.latency_ms
            for threads in (64, c):
                result[f"latency_list_vs_baseline_t{threads}"] = round(
                    result[f"latency_baseline_t{threads}"]["wall_s"]  # type: ignore[index]
                    / result[f"latency_list_c{c}"]["wall_s"],  # type: ignore[index]
                    2,
                )

        if "faults" not in skip:
            server = Server(args.n, fail_pct=5)
            table = write_table(work / "faulty.csv", server.url, args.n)
            out = work / "faulty"
            m = measure(crawl_cmd(str(table), out))
            server.close()
            recs = records(out)
            bad_bodies = sum(
                1
                for x in recs
                if x["sha256"] != hashlib.sha256(clip_body(int(x["clip_id"][1:]))).hexdigest()
            )
            retried = sum(1 for x in recs if x["attempts"] > 1)
            result["faults_5pct_503"] = {
                "items_per_s": round(args.n / m["wall_s"], 1),
                "success": sum(x["status"] == "success" for x in recs),
                "items": len(recs),
                "retried": retried,
                "wrong_bodies_stored": bad_bodies,
                "peak_rss_mb": round(m["peak_rss_mb"], 1),
            }

        if "big" not in skip:
            server = Server(2000)
            big = work / "big.csv"
            with open(big, "w") as fh:
                fh.write("videoid,contentUrl,duration,page_dir,name\n")
                for i in range(args.big_rows):
                    fh.write(
                        f"{i},{server.url}/cdn/{i % 2000}.mp4,PT00H00M10S,000001_000050,a synthetic caption number {i}\n"
                    )
            out = work / "big"
            m = measure(crawl_cmd(str(big), out, "--limit", "1000"))
            server.close()
            assert len(records(out)) == 1000
            result["big_table_limit_1000"] = {
                "rows": args.big_rows,
                "table_mb": round(big.stat().st_size / 1e6, 1),
                "wall_s": round(m["wall_s"], 2),
                "peak_rss_mb": round(m["peak_rss_mb"], 1),
            }
    finally:
        shutil.rmtree(work, ignore_errors=True)
    result["load_avg_end"] = os.getloadavg()[0]
    print(json.dumps(result, indent=2))
    if args.markdown:
        print(markdown(result))


def markdown(r: dict) -> str:
    lines = [
        "| run | items/s (wall, start-up incl.) | MB/s | CPU ms/item | peak RSS MB (PSS) | note |",
        "|---|---|---|---|---|---|",
    ]
    names = ["list", "list_before", "list_2proc", "discover", "baseline"]
    names += [k for k in r if k.startswith("latency_") and isinstance(r[k], dict)]
    for name in names:
        if name in r:
            x = r[name]
            lines.append(
                f"| {name} | {x['items_per_s']} | {x['mb_per_s']} | {x['cpu_ms_per_item']} | "
                f"{x['peak_rss_mb']} ({x['peak_pss_mb']}) | walls {x['walls']} |"
            )
    if "faults_5pct_503" in r:
        x = r["faults_5pct_503"]
        lines.append(
            f"| list, 5 % 503 | {x['items_per_s']} | | | {x['peak_rss_mb']} | {x['success']}/{x['items']} success, "
            f"{x['retried']} retried, {x['wrong_bodies_stored']} wrong bodies stored |"
        )
    if "big_table_limit_1000" in r:
        x = r["big_table_limit_1000"]
        lines.append(
            f"| {x['rows']:,}-row CSV ({x['table_mb']} MB), --limit 1000 | | | | {x['peak_rss_mb']} | wall {x['wall_s']} s |"
        )
    for name in ("list", "list_before", "list_2proc"):
        if f"{name}_vs_baseline" in r:
            lines.append(
                f"\n{name} vs naive baseline: {r[f'{name}_vs_baseline']}× the baseline's speed (median wall)"
            )
    for key in (k for k in r if k.startswith("latency_list_vs_baseline")):
        lines.append(
            f"\nlatency {r['latency_ms']} ms, crawl vs baseline {key.rsplit('_', 1)[1]}: {r[key]}×"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "_baseline":
        baseline_child(sys.argv[2], sys.argv[3], int(sys.argv[4]))
    else:
        main()
