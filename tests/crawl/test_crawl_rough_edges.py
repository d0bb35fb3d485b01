"""`webvid crawl` as a new user meets it (issue #17): a crawl that can attempt nothing says
why and exits non-zero, a start URL replaces the recipe's, the resume counts agree, failed
records carry a media kind, failed validation creates no folder, and the progress bar counts
in the summary's categories. Real CLI, real loopback servers, records read back."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from aiohttp import web

from webvid import io
from webvid.cli import main
from webvid.crawl.loop import status_fields
from webvid.crawl.run import run
from webvid.errors import InputError

FAST = ["--per-host-rps", "1000", "--set", "net.retries=0"]


def cli(*args: str) -> int:
    try:
        main(list(args))
    except SystemExit as exc:
        return int(exc.code or 0)
    return 0


def said(capsys) -> str:
    """Everything printed, stdout and stderr, with rich's line wrapping undone."""
    got = capsys.readouterr()
    return " ".join((got.out + got.err).split())


def rows_of(out: Path) -> dict[str, dict]:
    rows = [
        r for p in sorted((out / "records").glob("*.parquet")) for r in pq.read_table(p).to_pylist()
    ]
    return {r["clip_id"]: r for r in rows}


def stock_site(kit, clips: tuple[str, ...] = ("c0", "c1", "c2")) -> tuple[web.Application, object]:
    """A home page linking to clip pages with a <video>; ``/bare`` is a page with no links;
    clip ``oo`` opts out with a robots meta tag."""
    state = kit.SiteState()
    app = kit.make_app(state)

    async def home(_: web.Request) -> web.Response:
        links = "".join(f'<a href="/clip/{c}">{c}</a>' for c in clips)
        return web.Response(text=f"<html><body>{links}</body></html>", content_type="text/html")

    async def clip(req: web.Request) -> web.Response:
        cid = req.match_info["cid"]
        meta = '<meta name="robots" content="noai">' if cid == "oo" else ""
        return web.Response(
            text=f'<html><head>{meta}</head><body><video src="/cdn/{cid}.mp4"></video>'
            f'<img src="/p.jpg" alt="clip {cid}"></body></html>',
            content_type="text/html",
        )

    async def cdn(req: web.Request) -> web.Response:
        return web.Response(body=kit.fake_mp4(req.match_info["cid"]), content_type="video/mp4")

    async def bare(_: web.Request) -> web.Response:
        return web.Response(text="<html><body>nothing here</body></html>", content_type="text/html")

    app.router.add_get("/", home)
    app.router.add_get("/clip/{cid}", clip)
    app.router.add_get("/cdn/{cid}.mp4", cdn)
    app.router.add_get("/bare", bare)
    return app, state


def recipe(path: Path, start: str) -> Path:
    path.write_text(
        "[discover]\n"
        f'start_urls = ["{start}"]\n'
        "item_patterns = ['/clip/[^/]+$']\n"
        "[polite]\nper_host_rps = 1000.0\nper_host_burst = 100\n"
        "[net]\nretries = 0\n"
    )
    return path


# -- 1. nothing could be attempted: say why, exit non-zero --------------------------------------


def test_loopback_start_url_without_allow_private(tmp_path: Path, capsys, site) -> None:
    out = tmp_path / "out"
    assert cli("crawl", f"{site.url}/", "-o", str(out)) == 2
    text = said(capsys)
    assert f"the start URL {site.url}/ is refused: private_address" in text
    assert "--allow-private allows" in text and "0 items" not in text
    assert not out.exists() and site.state.log == []  # no folder, not one request


def test_name_resolving_to_loopback_start_page(tmp_path: Path, capsys, site) -> None:
    port = site.url.rsplit(":", 1)[1]
    out = tmp_path / "out"
    assert cli("crawl", f"http://localhost:{port}/", "-o", str(out)) == 2
    text = said(capsys)
    assert f"the start page http://localhost:{port}/ failed: private_address" in text
    assert "localhost resolves to a private/loopback address" in text
    assert "--allow-private allows" in text
    assert not out.exists() and site.state.log == []


def test_start_page_failing_or_without_clips(tmp_path: Path, capsys, kit) -> None:
    app, state = stock_site(kit)
    with kit.ThreadServer(app) as server:
        out = tmp_path / "out"
        assert cli("crawl", f"{server.url}/nope", "-o", str(out), "--allow-private", *FAST) == 2
        assert f"the start page {server.url}/nope failed: http_404" in said(capsys)
        assert not out.exists()
        assert cli("crawl", f"{server.url}/bare", "-o", str(out), "--allow-private", *FAST) == 2
        text = said(capsys)
        assert "1 page(s) fetched" in text and "none of them a clip page" in text
        assert "discover.item_patterns" in text and not out.exists()


def test_every_item_refused_by_policy_then_allowed(tmp_path: Path, capsys, site) -> None:
    table = tmp_path / "t.csv"
    table.write_text("id,url\n" + "".join(f"p{i},{site.url}/v/p{i}.mp4\n" for i in range(3)))
    out = tmp_path / "out"
    assert cli("crawl", str(table), "-o", str(out), *FAST) == 2
    text = said(capsys)
    assert "skipped_policy" in text and "private_address" in text  # the summary, then why
    assert "every item was refused by the crawl's own policy" in text
    assert "(private_address 3)" in text and "--allow-private allows" in text
    assert {r["reason"] for r in rows_of(out).values()} == {"private_address"}
    assert site.state.log == []
    # the same command with the option: the refusals are decided again, not skipped as done
    assert cli("crawl", str(table), "-o", str(out), "--allow-private", *FAST) == 0
    assert {r["status"] for r in rows_of(out).values()} == {"success"}
    assert "3 items" in said(capsys)


# -- 2. a start URL as SOURCE replaces the recipe's -----------------------------------------


def test_source_start_url_replaces_recipe_start_urls(tmp_path: Path, capsys, kit) -> None:
    app_a, _ = stock_site(kit)
    app_b, state_b = stock_site(kit, clips=("b0", "b1"))
    with kit.ThreadServer(app_a) as a, kit.ThreadServer(app_b) as b:
        rec = recipe(tmp_path / "site.toml", f"{b.url}/")
        out = tmp_path / "out"
        code = cli("crawl", f"{a.url}/", "--recipe", str(rec), "-o", str(out), "--allow-private")
        assert code == 0, said(capsys)
        assert state_b.log == []  # the recipe's own start URL is never asked
        rows = rows_of(out)
        assert sorted(rows) == ["c0", "c1", "c2"]
        assert all(r["page_url"].startswith(a.url) for r in rows.values())
        config = io.read_manifest(out)["config"]
        assert config["discover"]["start_urls"] == [f"{a.url}/"]
        # without SOURCE, the recipe's start URLs are used
        out_b = tmp_path / "out-b"
        assert cli("crawl", str(rec), "-o", str(out_b), "--allow-private") == 0
        assert sorted(rows_of(out_b)) == ["b0", "b1"]
    capsys.readouterr()
    assert cli("crawl", "--help") == 0
    assert "A start URL as SOURCE replaces the --recipe's discover.start_urls" in said(capsys)


# -- 3. the resume summary agrees with itself --------------------------------------------------


def test_discovery_resume_counts_agree(tmp_path: Path, capsys, kit) -> None:
    app, state = stock_site(kit, clips=("c0", "c1", "c2", "oo"))
    with kit.ThreadServer(app) as server:
        rec = recipe(tmp_path / "site.toml", f"{server.url}/")
        out = tmp_path / "out"
        assert cli("crawl", str(rec), "-o", str(out), "--allow-private") == 0
        assert "4 items" in said(capsys)
        state.log.clear()
        assert cli("crawl", str(rec), "-o", str(out), "--allow-private") == 0
        text = said(capsys)
    assert f"resuming: {out} holds 4 finished clips" in text
    assert "0 items" in text and "4 of the source's items already done" in text
    assert not [p for p, _ in state.log if p.startswith(("/clip/", "/cdn/"))]
    manifest = io.read_manifest(out)
    assert manifest["stats"]["this_run"]["skipped_done"] == 4
    assert manifest["stats"]["this_run"]["nothing_done"] is None


# -- 4. every record has a media kind ----------------------------------------------------------


def test_failed_and_skipped_records_carry_a_media_kind(tmp_path: Path, site, crawl_config) -> None:
    table = tmp_path / "t.csv"
    table.write_text(
        "id,url,duration\n"
        f"v404,{site.url}/gone/a.mp4,\n"
        f"i404,{site.url}/gone/b.jpg,\n"
        f"hls,{site.url}/gone/c.m3u8,\n"
        f"bare,{site.url}/gone/d,\n"
        f"timed,{site.url}/gone/e,PT10S\n"
        f"robots,{site.url}/private/v/f.mp4,\n"
        f"ftp,ftp://example.com/g.png,\n"
        f"ok,{site.url}/v/ok.mp4,\n"
    )
    out = tmp_path / "out"
    run(crawl_config(source=str(table), via="direct"), out=out)
    rows = rows_of(out)
    got = {cid: (r["status"], r["media_kind"]) for cid, r in rows.items()}
    assert got == {
        "v404": ("failed_to_download", "video"),  # the URL's extension
        "i404": ("failed_to_download", "image"),
        "hls": ("failed_to_download", "video"),  # a manifest
        "bare": ("failed_to_download", "unknown"),  # nothing tells
        "timed": ("failed_to_download", "video"),  # the table declared a duration
        "robots": ("skipped_robots", "video"),  # never requested
        "ftp": ("skipped_policy", "image"),
        "ok": ("success", "video"),  # sniffed from the body
    }, got
    dry = tmp_path / "dry"
    run(crawl_config(source=str(table), dry_run=True), out=dry)
    assert {r["media_kind"] for r in rows_of(dry).values()} == {"video", "image", "unknown"}


def test_media_kind_from_response_type(tmp_path: Path, kit, crawl_config) -> None:
    state = kit.SiteState()
    app = kit.make_app(state)

    async def fake_image(_: web.Request) -> web.Response:
        return web.Response(body=b"not an image at all" * 10, content_type="image/png")

    app.router.add_get("/thumb", fake_image)
    with kit.ThreadServer(app) as server:
        table = tmp_path / "t.jsonl"
        table.write_text(json.dumps({"id": "x", "url": f"{server.url}/thumb"}) + "\n")
        out = tmp_path / "out"
        run(crawl_config(source=str(table), via="direct"), out=out)
    (row,) = rows_of(out).values()
    assert (row["reason"], row["media_kind"]) == ("bad_magic", "image")


# -- 5. failed validation creates nothing ------------------------------------------------------


@pytest.fixture
def inputs(tmp_path: Path) -> dict[str, Path]:
    (tmp_path / "nourl.csv").write_text("a,b\n1,2\n")
    (tmp_path / "empty.csv").write_text("")
    (tmp_path / "ok.csv").write_text("url\nhttp://example.com/a.mp4\n")
    (tmp_path / "bad-list.txt").write_text("not an identifier!\n")
    (tmp_path / "excl.toml").write_text('exclude = ["missing-list.txt"]\n')
    return {p.name: p for p in tmp_path.iterdir()}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["{nourl.csv}"], "no URL column (found columns: a, b)"),
        (["{empty.csv}"], "empty"),
        (["{ok.csv}", "--set", 'discover.item_patterns=["("]'], "bad regular expression"),
        (["{ok.csv}", "--set", 'polite.private_allowlist=["bad"]'], "private_allowlist"),
        (["{ok.csv}", "--recipe", "{excl.toml}"], "exclude list not found"),
        (["{ok.csv}", "--exclude", "{bad-list.txt}"], "bad-list.txt"),
        (["http://127.0.0.1:9/"], "the start URL http://127.0.0.1:9/ is refused"),
        (["http://[::1]:9/t.csv"], "cannot fetch the table http://[::1]:9/t.csv: private_address"),
        (["http://127.0.0.1:9/t.csv", "--allow-private"], "cannot fetch the table"),
    ],
)
def test_failed_validation_creates_no_folder(
    tmp_path: Path, capsys, inputs: dict[str, Path], args: list[str], message: str
) -> None:
    out = tmp_path / "new" / "crawl"
    argv = [str(inputs[a[1:-1]]) if a[1:-1] in inputs else a for a in args]
    if "-o" not in argv:
        argv += ["-o", str(out)]
    before = sorted(p.name for p in tmp_path.iterdir())
    assert cli("crawl", *argv, "--set", "net.retries=0") == 2
    text = said(capsys)
    assert message in text and len(re.findall(r"\berror:", text, re.IGNORECASE)) == 1, text
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # not even OUT's parent


def test_output_that_is_a_file(tmp_path: Path, crawl_config) -> None:
    (tmp_path / "t.csv").write_text("url\nhttp://example.com/a.mp4\n")
    (tmp_path / "out").write_text("x")
    with pytest.raises(InputError, match="the output is a file, not a folder"):
        run(crawl_config(source=str(tmp_path / "t.csv")), out=tmp_path / "out")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out", "t.csv"]


# -- 6. the progress bar counts as the summary does ------------------------------------------


class Recorder:
    def __init__(self) -> None:
        self.fields: dict[str, object] = {}
        self.done = 0

    def update(self, task: str, *, advance: float = 0, total: float | None = None, **fields):
        self.done += int(advance)
        self.fields.update(fields)

    def message(self, text: str) -> None:
        pass


def test_progress_fields_match_the_summary(tmp_path: Path, site, crawl_config) -> None:
    table = tmp_path / "t.csv"
    table.write_text(
        "id,url\n"
        f"ok1,{site.url}/v/ok1.mp4\n"
        f"ok2,{site.url}/v/ok2.mp4\n"
        f"gone,{site.url}/gone/x.mp4\n"
        f"robots,{site.url}/private/v/r.mp4\n"
        f"optout,{site.url}/optout/o.mp4\n"
        f"listed,{site.url}/v/listed.mp4\n"
    )
    listed = tmp_path / "takedown.txt"
    listed.write_text("listed\n")
    progress = Recorder()
    summary = run(
        crawl_config(source=str(table), exclude=(str(listed),)),
        out=tmp_path / "out",
        progress=progress,
    )
    assert summary.by_status == {
        "success": 2,
        "failed_to_download": 1,
        "skipped_robots": 1,
        "skipped_opt_out": 2,  # the opt-out and the takedown: skipped, never "failed"
    }
    assert summary.by_reason["x_robots_tag"] == 1 and summary.by_reason["taken_down"] == 1
    got = {k: progress.fields[k] for k in ("success", "failed", "skipped")}
    assert got == {"success": 2, "failed": 1, "skipped": 3}
    assert sum(got.values()) == progress.done == summary.attempted == 6


def test_status_fields() -> None:
    by_status = {"success": 3, "failed_to_download": 2, "skipped_opt_out": 4, "skipped_policy": 1}
    assert status_fields(by_status) == {"success": 3, "failed": 2, "skipped": 5}
    assert status_fields({"discovered": 7, "skipped_robots": 1}, dry_run=True) == {
        "discovered": 7,
        "failed": 0,
        "skipped": 1,
    }
