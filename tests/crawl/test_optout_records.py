"""Crawl dirs written before the opt-out columns existed stay readable: a resumed crawl
rewrites their parts in today's schema, and `webvid query` reads old and new parts together."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
from aiohttp import web

from webvid import contract, query
from webvid.crawl.run import run

OLD_SCHEMA = pa.schema(
    [f for f in contract.CRAWL_RECORD_SCHEMA if not f.name.startswith("optout_")]
)


def test_old_parts_are_upgraded_and_queried_with_new_ones(
    tmp_path: Path, kit, crawl_config
) -> None:
    state = kit.SiteState(robots="User-agent: *\nAllow: /\n")
    app = kit.make_app(state)

    async def media(req: web.Request) -> web.Response:
        headers = {"tdm-reservation": "1"} if req.match_info["n"] == "b" else {}
        return web.Response(
            body=kit.fake_mp4(req.match_info["n"]), content_type="video/mp4", headers=headers
        )

    app.router.add_get("/m/{n}.mp4", media)
    out = tmp_path / "out"
    with kit.ThreadServer(app) as server:
        old_rows = [
            {
                "clip_id": "a",
                "source_index": 0,
                "status": "failed_to_download",
                "reason": "timeout",
            },
            {
                "clip_id": "z",
                "source_index": 9,
                "status": "failed_to_download",
                "reason": "http_404",
            },
        ]
        (out / "records").mkdir(parents=True)
        pq.write_table(
            contract.rows_to_table(old_rows, OLD_SCHEMA), out / "records" / "part-00000.parquet"
        )
        table = tmp_path / "t.csv"
        table.write_text(f"id,url\na,{server.url}/m/a.mp4\nb,{server.url}/m/b.mp4\n")
        run(crawl_config(source=str(table), retry_failed=True), out=out)

    parts = sorted((out / "records").glob("part-*.parquet"))
    assert all(pq.read_schema(p) == contract.CRAWL_RECORD_SCHEMA for p in parts)  # upgraded
    rows = {r["clip_id"]: r for p in parts for r in pq.read_table(p).to_pylist()}
    assert rows["z"]["optout_source"] is None and rows["z"]["reason"] == "http_404"
    assert rows["a"]["status"] == "success" and rows["a"]["optout_signals"] is None
    assert (rows["b"]["status"], rows["b"]["optout_source"]) == ("skipped_opt_out", "tdmrep-header")

    con = query.open_readonly(out)
    got = con.execute("SELECT clip_id, optout_source FROM crawl ORDER BY clip_id").fetchall()
    assert got == [("a", None), ("b", "tdmrep-header"), ("z", None)]


def test_query_reads_an_old_crawl_dir_beside_a_new_one(tmp_path: Path) -> None:
    old = contract.rows_to_table([{"clip_id": "o", "status": "success"}], OLD_SCHEMA)
    new = contract.rows_to_table(
        [
            {
                "clip_id": "n",
                "status": "skipped_opt_out",
                "reason": "opt_out",
                "optout_source": "content-usage",
                "optout_value": "train-ai=n",
                "optout_signals": [
                    {
                        "source": "content-usage",
                        "on": "media",
                        "value": "train-ai=n",
                        "train_ai": "deny",
                        "train_genai": "deny",
                        "search": None,
                        "superseded": False,
                    }
                ],
            }
        ],
        contract.CRAWL_RECORD_SCHEMA,
    )
    for name, t in (("old", old), ("new", new)):
        (tmp_path / name / "records").mkdir(parents=True)
        pq.write_table(t, tmp_path / name / "records" / "part-00000.parquet")
    con = query.open_readonly(tmp_path)
    got = con.execute(
        "SELECT clip_id, optout_value, len(optout_signals) FROM crawl ORDER BY clip_id"
    ).fetchall()
    assert got == [("n", "train-ai=n", 1), ("o", None, None)]
