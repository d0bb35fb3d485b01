"""List mode end to end against the purpose-built loopback server: every behaviour ends as
the right status and reason, media on disk match their records, manifest written last."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from webvid import contract, io
from webvid.crawl.config import NetConfig
from webvid.crawl.run import run


def read_records(out: Path) -> list[dict]:
    rows: list[dict] = []
    for part in sorted((out / "records").glob("part-*.parquet")):
        table = pq.read_table(part)
        assert table.schema.equals(contract.CRAWL_RECORD_SCHEMA), part
        rows.extend(table.to_pylist())
    return rows


def by_id(rows: list[dict]) -> dict[str, dict]:
    out = {r["clip_id"]: r for r in rows}
    assert len(out) == len(rows), "duplicate clip ids in records"
    return out


def write_csv(path: Path, rows: list[tuple[str, str, str]]) -> Path:
    lines = ["videoid,contentUrl,duration,page_dir,name"]
    lines += [f"{vid},{url},PT00H00M05S,000001_000050,{cap}" for vid, url, cap in rows]
    path.write_text("\n".join(lines) + "\n")
    return path


CASES = {
    # id: (path, status, reason)
    "ok1": ("/v/ok1.mp4", "success", None),
    "img1": ("/img/img1.jpg", "success", None),
    "flaky": ("/flaky/flaky.mp4?fail=2", "success", None),
    "limited": ("/ratelimit/limited.mp4", "success", None),
    "gone": ("/status/404", "failed_to_download", "http_404"),
    "forbidden": ("/status/403", "failed_to_download", "http_4xx"),
    "down": ("/status/500", "failed_to_download", "http_5xx"),
    "loop": ("/loop/a", "failed_to_download", "redirect_loop"),
    "optout": ("/optout/optout.mp4", "skipped_opt_out", "x_robots_tag"),
    "scoped": ("/optout/scoped.mp4?tag=webvid:%20noai", "skipped_opt_out", "x_robots_tag"),
    "otherbot": ("/optout/otherbot.mp4?tag=otherbot:%20noai", "success", None),
    "html": ("/html/html.mp4", "failed_to_download", "bad_content_type"),
    "text": ("/typed/text", "failed_to_download", "bad_content_type"),
    "garbage": ("/typed/garbage", "failed_to_download", "bad_magic"),
    "empty": ("/typed/empty", "failed_to_download", "empty_body"),
    "trunc": ("/trunc/trunc.mp4", "failed_to_download", "truncated"),
    "resume": ("/resume/resume.mp4", "success", None),
    "robots": ("/private/v/robots.mp4", "skipped_robots", "robots_disallowed"),
    "redir": ("/redirect?to=/v/redir.mp4", "success", None),
}


@pytest.fixture
def table(tmp_path: Path, site) -> Path:
    rows = [(vid, site.url + path, f"caption of {vid}") for vid, (path, _, _) in CASES.items()]
    rows.append(("badscheme", "ftp://example.com/x.mp4", "bad scheme"))
    return write_csv(tmp_path / "webvid.csv", rows)


def test_list_mode_statuses_and_files(tmp_path: Path, site, table: Path, crawl_config) -> None:
    out = tmp_path / "out"
    cfg = crawl_config(source=str(table))
    summary = run(cfg, out=out)
    rows = by_id(read_records(out))
    assert set(rows) == set(CASES) | {"badscheme"}
    for vid, (_, status, reason) in CASES.items():
        assert (rows[vid]["status"], rows[vid]["reason"]) == (status, reason), (
            vid,
            rows[vid]["error_message"],
        )
    assert (
        rows["badscheme"]["status"] == "skipped_policy"
        and rows["badscheme"]["reason"] == "invalid_url"
    )
    # successes: the file is there, named by clip id, and matches size and sha256
    for r in rows.values():
        if r["status"] != "success":
            assert r["media_path"] is None
            continue
        data = io.safe_join(out, r["media_path"]).read_bytes()
        assert len(data) == r["bytes"] and hashlib.sha256(data).hexdigest() == r["sha256"]
        assert r["media_path"] == contract.media_relpath(
            r["clip_id"], "jpg" if r["clip_id"] == "img1" else "mp4"
        )
    assert rows["img1"]["media_kind"] == "image" and rows["ok1"]["media_kind"] == "video"
    # WebVid columns: caption from `name`, duration parsed, the rest kept as extra
    assert rows["ok1"]["caption"] == "caption of ok1" and rows["ok1"]["duration_s"] == 5.0
    assert json.loads(rows["ok1"]["extra_json"])["page_dir"] == "000001_000050"
    # retries counted; the 503 bodies never stored
    assert rows["flaky"]["attempts"] == 3 and rows["limited"]["attempts"] == 2
    # Range resume: second request asked for the rest
    resume_reqs = [h for p, h in site.state.log if p.startswith("/resume/")]
    assert len(resume_reqs) == 2 and resume_reqs[1]["Range"] == "bytes=100000-"
    # robots obeyed: the disallowed media was never requested
    assert site.requests_to("/private/") == []
    # no temp or partial files left behind
    leftovers = [
        p
        for p in (out / "media").rglob("*")
        if p.is_file() and not p.name.endswith((".mp4", ".jpg"))
    ]
    assert leftovers == []
    manifest = io.read_manifest(out)
    assert (
        manifest["counts"]["records"] == len(rows)
        and manifest["counts"]["success"] == summary.by_status["success"]
    )
    assert summary.attempted == len(rows)


def test_byte_cap_with_and_without_length(tmp_path: Path, site, crawl_config) -> None:
    table = write_csv(
        tmp_path / "t.csv",
        [
            ("withlen", site.url + "/big.mp4", "a"),
            ("nolen", site.url + "/big.mp4?nolen=1", "b"),
        ],
    )
    out = tmp_path / "out"
    run(crawl_config(source=str(table), max_bytes=100_000), out=out)
    rows = by_id(read_records(out))
    assert rows["withlen"]["reason"] == "too_large" and rows["nolen"]["reason"] == "too_large"
    assert rows["nolen"]["bytes"] <= 100_000 + 64 * 1024  # stopped within one chunk of the cap
    assert not list((out / "media").rglob("*.mp4"))


def test_total_deadline_stops_trickling_server(tmp_path: Path, site, crawl_config) -> None:
    table = write_csv(tmp_path / "t.csv", [("slow", site.url + "/slow.mp4", "s")])
    out = tmp_path / "out"
    net = NetConfig(retries=0, total_timeout_s=1.0, read_timeout_s=5.0)
    run(crawl_config(source=str(table), net=net), out=out)
    row = read_records(out)[0]
    assert (
        row["reason"] == "timeout" and row["elapsed_s"] < 10.0
    )  # the body alone would take minutes


def test_dry_run_records_without_downloading(
    tmp_path: Path, site, table: Path, crawl_config
) -> None:
    out = tmp_path / "out"
    summary = run(crawl_config(source=str(table), dry_run=True), out=out)
    rows = read_records(out)
    assert {r["status"] for r in rows} <= {"discovered", "skipped_policy"}
    assert summary.by_status["discovered"] == len(CASES)
    assert not site.state.log  # nothing fetched at all
    assert not (out / "media").exists() or not list((out / "media").rglob("*.*"))


def test_limit_counts_source_items(tmp_path: Path, site, crawl_config) -> None:
    table = write_csv(
        tmp_path / "t.csv", [(f"c{i}", f"{site.url}/v/c{i}.mp4", "x") for i in range(10)]
    )
    out = tmp_path / "out"
    run(crawl_config(source=str(table), limit=4), out=out)
    assert sorted(r["clip_id"] for r in read_records(out)) == ["c0", "c1", "c2", "c3"]
    run(dataclasses.replace(crawl_config(source=str(table)), limit=6), out=out)
    assert sorted(r["clip_id"] for r in read_records(out)) == [f"c{i}" for i in range(6)]
    assert site.state.hits["/v/c0.mp4"] == 1  # resumed: not downloaded twice


def test_real_run_supersedes_dry_run_rows(tmp_path: Path, site, crawl_config) -> None:
    table = write_csv(
        tmp_path / "t.csv", [(f"d{i}", f"{site.url}/v/d{i}.mp4", "x") for i in range(4)]
    )
    out = tmp_path / "out"
    run(crawl_config(source=str(table), dry_run=True), out=out)
    assert {r["status"] for r in read_records(out)} == {"discovered"}
    summary = run(crawl_config(source=str(table)), out=out)
    rows = by_id(read_records(out))  # one row per clip: the discovered rows were replaced
    assert summary.attempted == 4 and {r["status"] for r in rows.values()} == {"success"}


def test_processes_give_the_same_records(tmp_path: Path, site, table: Path, crawl_config) -> None:
    one, two = tmp_path / "one", tmp_path / "two"
    run(crawl_config(source=str(table)), out=one)
    site.state.hits.clear()  # the flaky/ratelimit routes fail again on their first request
    summary = run(crawl_config(source=str(table), processes=2), out=two)
    a, b = by_id(read_records(one)), by_id(read_records(two))
    assert {k: (r["status"], r["reason"], r["sha256"]) for k, r in a.items()} == {
        k: (r["status"], r["reason"], r["sha256"]) for k, r in b.items()
    }
    assert summary.attempted == len(b) and io.read_manifest(two)["counts"]["records"] == len(b)
    parts = sorted(p.name for p in (two / "records").glob("part-*.parquet"))
    assert len(parts) >= 2  # each worker wrote its own parts
    again = run(crawl_config(source=str(table), processes=2), out=two)
    assert again.attempted == 0 and again.skipped_done == len(b)
