"""The demo's ``report.html``: one self-contained page with what every stage did.

Takes a :class:`webvid.demo.pipeline.DemoSummary` and the files of the demo folder. Produces
``OUT/report.html`` (images embedded as base64, no external assets): the crawl outcomes (with
the planted problems the politeness and safety rules caught), the curation funnels, the
training curves per stage, the 1-frame vs 4-frame comparison on retrieval and on the
direction-of-motion test, example searches with thumbnails, and the closing takedown of two
clips with where they can be found before and after.
"""

from __future__ import annotations

import base64
import html
import json
import subprocess
import tarfile
from pathlib import Path
from typing import Any

from webvid import io as wio
from webvid.demo.counts import crawl_counts

CSS = """
body{font:14px/1.45 system-ui,sans-serif;max-width:1100px;margin:2em auto;color:#222}
h1{font-size:1.6em}h2{margin-top:1.8em;border-bottom:1px solid #ddd}
table{border-collapse:collapse;margin:.6em 0}td,th{border:1px solid #ccc;padding:3px 8px;text-align:left}
th{background:#f4f4f4}.num{text-align:right}.hits{display:flex;gap:12px;flex-wrap:wrap}
.hit{width:180px;font-size:12px}.hit img{width:176px;border:1px solid #ccc}.muted{color:#777}
"""


def _table(headers: list[str], rows: list[list[Any]]) -> str:
    head = "".join(f"<th>{html.escape(str(h))}</th>" for h in headers)
    body = ""
    for r in rows:
        cells = ""
        for v in r:
            cls = ' class="num"' if isinstance(v, int | float) else ""
            text = f"{v:.2f}" if isinstance(v, float) else str(v)
            cells += f"<td{cls}>{html.escape(text)}</td>"
        body += f"<tr>{cells}</tr>"
    return f"<table><tr>{head}</tr>{body}</table>"


def _png(path: Path) -> str:
    if not path.is_file():
        return '<p class="muted">(no plot)</p>'
    data = base64.b64encode(path.read_bytes()).decode()
    return f'<img alt="{html.escape(path.name)}" src="data:image/png;base64,{data}" style="max-width:100%">'


def thumbnail(shard_dir: Path, key: str) -> bytes | None:
    """A JPEG of sample ``key``: its first pre-extracted frame, else the mp4's first frame."""
    for tar_path in sorted(shard_dir.glob("*.tar")):
        with tarfile.open(tar_path) as tar:
            names = {m.name: m for m in tar.getmembers() if m.name.startswith(key + ".")}
            if not names:
                continue
            jpgs = sorted(n for n in names if n.endswith(".jpg"))
            if jpgs:
                fh = tar.extractfile(names[jpgs[0]])
                return fh.read() if fh else None
            mp4 = names.get(f"{key}.mp4")
            if mp4 is None:
                return None
            fh = tar.extractfile(mp4)
            if fh is None:
                return None
            proc = subprocess.run(
                [
                    "ffmpeg",
                    "-v",
                    "error",
                    "-i",
                    "pipe:0",
                    "-frames:v",
                    "1",
                    "-f",
                    "image2",
                    "-c:v",
                    "mjpeg",
                    "pipe:1",
                ],
                input=fh.read(),
                capture_output=True,
                timeout=60,
            )
            return proc.stdout or None
    return None


def _crawl_section(s: Any) -> str:
    out = ["<h2>1. Crawl</h2>"]
    for name, summ in s.crawl.items():
        c = crawl_counts(summ)
        out.append(f"<h3>{html.escape(name)}</h3>")
        out.append(_table(["status", "items"], [[k, v] for k, v in c["by_status"].items()]))
        if c["by_reason"]:
            out.append(_table(["reason", "items"], [[k, v] for k, v in c["by_reason"].items()]))
        if c["by_optout"]:
            rows = [[k, v] for k, v in c["by_optout"].items()]
            out.append(_table(["opt-out signal that decided", "items"], rows))
    out.append(
        '<p class="muted">skipped_robots: pages under the site\'s robots.txt Disallow (or a '
        "group for an AI-training crawler); skipped_opt_out: an opt-out signal for AI training "
        "(X-Robots-Tag: noai, Content-Usage, Content-Signal, TDMRep, robots meta; the opt-out "
        "table says which decided, kept items included); 429/503 answers were retried with "
        "backoff honouring Retry-After; redirect loops, truncated bodies and wrong content types "
        "end as failed_to_download with their reason.</p>"
    )
    return "\n".join(out)


def _shard_section(s: Any) -> str:
    out = ["<h2>2. Curation</h2>"]
    for name, summ in s.shards.items():
        rows = (
            [["inputs", summ.inputs]]
            + [[f"removed: {r}", n] for r, n in summ.funnel]
            + [["kept", summ.kept]]
        )
        out.append(f"<h3>{html.escape(name)}</h3>")
        out.append(_table(["step", "clips"], rows))
        out.append(
            f'<p class="muted">full report: shards/{html.escape(name)}/report.html; samples per split: '
            f"{html.escape(str(summ.samples))}</p>"
        )
    return "\n".join(out)


def _eval_section(s: Any) -> str:
    rows = []
    for name, m in s.evals.items():
        rows.append(
            [
                name,
                m.get("t2v_R1", float("nan")),
                m.get("t2v_R5", float("nan")),
                m.get("t2v_R10", float("nan")),
                m.get("t2v_MedR", float("nan")),
                m.get("direction_acc", float("nan")),
            ]
        )
    return "\n".join(
        [
            "<h2>3. Training and evaluation</h2>",
            _png(s.out / "run" / "curves.png"),
            "<p>Held-out clips (the <code>val</code> split of the video shards). Text→video recall in %, "
            f"chance R@1 = {s.chance_r1:.2f}%. Direction accuracy: the clip's four captions that differ "
            "only in direction of motion, scored against the clip; chance = 25%.</p>",
            f"<p><b>What to expect.</b> {html.escape(_expectation(s))}</p>",
            _table(
                ["model", "t2v R@1", "t2v R@5", "t2v R@10", "t2v MedR", "direction acc. %"], rows
            ),
        ]
    )


def _expectation(s: Any) -> str:
    from webvid.demo.evaluate import expectation_note

    final = list(s.evals.values())[-1] if s.evals else {}
    return expectation_note(int(final.get("videos", 0)), bool(getattr(s, "quick", False)))


def _match_text(hit: dict[str, Any]) -> str:
    if "appearance_match" not in hit:
        return ""
    return (
        f" · looks {'right' if hit['appearance_match'] else 'wrong'}, moves "
        f"{'right' if hit['direction_match'] else 'wrong'}"
    )


def search_note(searches: list[dict[str, Any]]) -> str:
    """How many top hits show the query's appearance / direction, against chance (plain text)."""
    hits = [h for e in searches for h in e["hits"] if "appearance_match" in h]
    if not hits:
        return ""
    looks = sum(h["appearance_match"] for h in hits)
    moves = sum(h["appearance_match"] and h["direction_match"] for h in hits)
    chances = [e["appearance_chance"] for e in searches if "appearance_chance" in e]
    p = 100.0 * sum(chances) / len(chances) if chances else float("nan")
    return (
        f"{looks} of {len(hits)} top-3 hits show the query's colour, shape and background "
        f"(a random held-out clip: {p:.0f} %); {moves} also move the queried way (a random "
        f"clip of the right look: 25 %). Scores are cosines of a model trained for minutes: "
        "low and close together, so the order among look-alikes is weak — it tells colour and "
        "shape apart well before it learns direction (see What to expect above)."
    )


def _search_section(s: Any) -> str:
    out = ["<h2>4. Text search over held-out clips</h2>"]
    note = search_note(s.searches)
    if note:
        out.append(f"<p>{html.escape(note)}</p>")
    val = s.out / "shards" / "videos" / "val"
    for entry in s.searches:
        out.append(f'<h3>“{html.escape(entry["query"])}”</h3><div class="hits">')
        for hit in entry["hits"]:
            jpg = thumbnail(val, hit["key"])
            img = (
                f'<img src="data:image/jpeg;base64,{base64.b64encode(jpg).decode()}">'
                if jpg
                else ""
            )
            out.append(
                f'<div class="hit">{img}<br>{html.escape(hit["caption"])}<br>'
                f'<span class="muted">{hit["key"]} · {hit["score"]:.3f}'
                f"{html.escape(_match_text(hit))}</span></div>"
            )
        out.append("</div>")
    return "\n".join(out)


def _takedown_section(s: Any) -> str:
    td = getattr(s, "takedown", None)
    if not td:
        return ""
    removed = td["removed"]
    rows = []
    for c in td["clips"]:
        for when in ("before", "after"):
            w = c[when]
            rank = w["search_rank"]
            rows.append(
                [
                    f"{c['key']} “{c['caption']}”" if when == "before" else "",
                    when,
                    w["samples"],
                    w["tar_members"],
                    w["index_rows"],
                    f"{rank} of {w['index_size']}" if rank else f"absent (of {w['index_size']})",
                ]
            )
    return "\n".join(
        [
            "<h2>5. A takedown</h2>",
            f"<p>A publisher asks for two clips to be removed (<code>{html.escape(td['request'])}"
            "</code>: one by its page URL, one by its media URL). <code>webvid takedown</code> "
            f"removed {removed['samples']} sample(s) from {removed['shards_rewritten']} shard(s), "
            f"{removed['rejected_inputs']} rejected duplicate(s) from the verdicts, "
            f"{removed['crawl_records']} crawl record(s) with their files and "
            f"{removed['index_rows']} row(s) of the embedding index; every other shard is "
            "untouched. Where each clip can be found, before and after (search: its rank when "
            "the index is searched for its own caption):</p>",
            _table(["clip", "", "samples", "tar members", "index rows", "search rank"], rows),
            f'<p class="muted">The log: <code>webvid query --root {html.escape(str(s.out))} '
            '"SELECT * FROM takedowns"</code>. See docs/ethics.md, Takedowns.</p>',
        ]
    )


def write_report(s: Any) -> Path:
    timings = _table(["stage", "seconds"], [[k, v] for k, v in s.timings_s.items()])
    page = "\n".join(
        [
            '<!doctype html><html><head><meta charset="utf-8"><title>webvid demo</title>',
            f"<style>{CSS}</style></head><body>",
            "<h1>webvid demo</h1>",
            f"<p>Built-in demo stock site, crawled, curated, trained on and evaluated on this machine. "
            f"Output folder: <code>{html.escape(str(s.out))}</code>. Query everything with "
            f"<code>webvid query --root {html.escape(str(s.out))} --schema</code>.</p>",
            timings,
            _crawl_section(s),
            _shard_section(s),
            _eval_section(s),
            _search_section(s),
            _takedown_section(s),
            "</body></html>",
        ]
    )
    path = Path(s.out) / "report.html"
    wio.write_text(path, page)
    return path


def _pm(s: dict[str, float], digits: int = 1) -> str:
    """``mean (min–max)`` of a :func:`webvid.demo.loop.spread` result."""
    if s["mean"] is None:  # nothing to average (loop.json has no NaN)
        return "–"
    return f"{s['mean']:.{digits}f} ({s['min']:.{digits}f}–{s['max']:.{digits}f})"


LOOP_LABELS = {
    "t2v_R1": "t2v R@1 %",
    "t2v_R5": "t2v R@5 %",
    "t2v_R10": "t2v R@10 %",
    "direction_acc": "direction acc. %",
}


def loop_tables(loop: dict[str, Any]) -> dict[str, list[list[str]]]:
    """The loop's two tables as rows of text: held-out retrieval per arm, filter quality."""
    summ, chance = loop["summary"], loop["chance"]
    retrieval = [
        [
            label,
            _pm(summ["baseline"][m]),
            _pm(summ["filtered"][m]),
            f"{summ['delta'][m]['mean']:+.1f} (±{summ['delta'][m]['std']:.1f})"
            if summ["delta"][m]["mean"] is not None
            else "–",
            f"{chance[m]:.1f}" if chance[m] is not None else "–",
        ]
        for m, label in LOOP_LABELS.items()
    ]
    quality = []
    for kind, label in (
        ("caption_mismatch", "swapped captions (min_caption_agreement)"),
        ("semantic_duplicates", "re-renders (semantic dedup, max_per_semantic_cluster)"),
    ):
        per = [s["filter"][kind] for s in loop["seeds"]]
        quality.append(
            [
                label,
                _pm(summ[kind]["precision"], 2),
                _pm(summ[kind]["recall"], 2),
                " / ".join(
                    f"{p['right']}/{p['flagged' if 'flagged' in p else 'dropped']}" for p in per
                ),
                f"{per[0]['chance_precision']:.2f}"
                if per and per[0]["chance_precision"] is not None
                else "–",
            ]
        )
    return {"retrieval": retrieval, "quality": quality}


def loop_section(loop: dict[str, Any]) -> str:
    """The report section of ``webvid demo --loop`` (``loop.json``'s data)."""
    cfg, tabs = loop["config"], loop_tables(loop)
    seeds = ", ".join(str(s["seed"]) for s in loop["seeds"])
    return "\n".join(
        [
            "<h2>Curation with the model in the loop</h2>",
            f"<p>The demo site with planted noise ({loop['noise']['swapped']} clips with a swapped "
            f"caption, {loop['noise']['rerenders']} re-renders of other clips; truth in "
            "<code>noise-truth.json</code>), crawled and curated once. Per training seed "
            f"({seeds}): the demo's training recipe ({cfg['steps'][0]} + {cfg['steps'][1]} steps) "
            "→ <code>webvid score</code> of the train split with its final checkpoint → "
            "<code>webvid refilter</code> with <code>min_caption_agreement = "
            f"{cfg['min_caption_agreement']}</code>"
            + (
                " and "
                if cfg.get("apply_dedup")
                else " (semantic dedup judged on a dry run, not applied: "
            )
            + f"<code>max_per_semantic_cluster = {cfg['max_per_semantic_cluster']}</code>, "
            f"near-duplicate cosine ≥ {cfg['dedup_threshold']}"
            + ("" if cfg.get("apply_dedup") else ")")
            + " → the same recipe, seed and steps again on the filtered shards. Values: mean "
            "(min–max) over the seeds.</p>",
            "<h3>Filters against the planted truth</h3>",
            _table(
                ["filter", "precision", "recall", "right / removed, per seed", "chance precision"],
                tabs["quality"],
            ),
            f'<p class="muted">Rule-based curation before scoring: {html.escape(json.dumps(loop["rule_based"]))}. '
            "Chance precision: the planted share of the train clips the filter saw (what removing "
            "clips at random would reach).</p>",
            "<h3>Held-out retrieval, without and with the filter</h3>",
            _table(
                ["metric", "baseline", "filtered", "filtered − baseline (±std)", "chance"],
                tabs["retrieval"],
            ),  # fmt: skip
            f'<p class="muted">{loop["seeds"][0].get("val_videos", 0):.0f} held-out clips (no '
            "planted noise, never scored), the same for both arms; one clip is "
            f"{100 / max(1.0, loop['seeds'][0].get('val_videos') or 1):.1f} points of R@k.</p>",
        ]
    )


def write_loop_report(out: Path, loop: dict[str, Any]) -> Path:
    """``OUT/report.html`` of ``webvid demo --loop``."""
    timings = _table(["stage", "seconds"], [[k, v] for k, v in loop["timings_s"].items()])
    page = "\n".join(
        [
            '<!doctype html><html><head><meta charset="utf-8"><title>webvid demo --loop</title>',
            f"<style>{CSS}</style></head><body>",
            "<h1>webvid demo --loop</h1>",
            timings,
            loop_section(loop),
            "</body></html>",
        ]
    )
    path = Path(out) / "report.html"
    wio.write_text(path, page)
    return path
