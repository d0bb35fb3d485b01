"""The SDPA divided space-time attention equals a plain softmax(q·kᵀ)·v reference, to 1e-5 fp32.

``reference_attention`` below is written straight from the reference spec (§1.3): scale q,
split off CLS, CLS attends to every key, patches regrouped per frame (space) or per spatial
location (time), the CLS key/value repeated in front of every group, explicit softmax.
"""

from __future__ import annotations

import pytest
import torch

from webvid.model.vit import (
    SpaceTimeTransformer,
    _kernel_for,
    divided_attention,
    explicit_attention,
)


def reference_attention(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, frames: int, pattern: str
) -> torch.Tensor:
    b, h, length, d = q.shape
    n = (length - 1) // frames
    q, k, v = (t.reshape(b * h, length, d) for t in (q, k, v))  # "(b h) n d"
    q = q * d**-0.5

    def attn(qq: torch.Tensor, kk: torch.Tensor, vv: torch.Tensor) -> torch.Tensor:
        sim = torch.einsum("bid,bjd->bij", qq, kk)
        return torch.einsum("bij,bjd->bid", sim.softmax(dim=-1), vv)

    cls_q, q_ = q[:, :1], q[:, 1:]
    cls_k, k_ = k[:, :1], k[:, 1:]
    cls_v, v_ = v[:, :1], v[:, 1:]
    cls_out = attn(cls_q, k, v)  # CLS attends to everything

    def group(t: torch.Tensor) -> torch.Tensor:
        t = t.reshape(b * h, frames, n, d)
        if pattern == "space":  # b (f n) d -> (b f) n d
            return t.reshape(b * h * frames, n, d)
        return t.transpose(1, 2).reshape(b * h * n, frames, d)  # b (f n) d -> (b n) f d

    r = frames if pattern == "space" else n
    q_, k_, v_ = group(q_), group(k_), group(v_)
    k_ = torch.cat([cls_k.repeat_interleave(r, dim=0), k_], dim=1)
    v_ = torch.cat([cls_v.repeat_interleave(r, dim=0), v_], dim=1)
    out = attn(q_, k_, v_)
    if pattern == "space":
        out = out.reshape(b * h, frames * n, d)
    else:
        out = out.reshape(b * h, n, frames, d).transpose(1, 2).reshape(b * h, frames * n, d)
    out = torch.cat([cls_out, out], dim=1).reshape(b, h, length, d)
    return out.transpose(1, 2).reshape(b, length, h * d)  # merge heads


def _randomise_time_attention(model: SpaceTimeTransformer, seed: int) -> None:
    """Give time attention, norm3 and the temporal table non-trivial values."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "timeattn" in name or "norm3" in name or name == "temporal_embed":
                p.copy_(torch.randn(p.shape, generator=g) * 0.2)


@pytest.mark.parametrize("frames", [1, 2, 4, 8])
@pytest.mark.parametrize("pattern", ["space", "time"])
def test_kernel_equals_reference(frames: int, pattern: str) -> None:
    torch.manual_seed(frames)
    b, h, n, d = 2, 3, 16, 8
    q, k, v = (torch.randn(b, h, 1 + frames * n, d) for _ in range(3))
    ours = divided_attention(q, k, v, frames, pattern)
    ref = reference_attention(q, k, v, frames, pattern)
    assert ours.shape == (b, 1 + frames * n, h * d)
    torch.testing.assert_close(ours, ref, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("pattern", ["space", "time"])
def test_explicit_kernel_equals_reference(pattern: str) -> None:
    """The CPU-bf16 kernel computes the same attention (checked in fp32, to 1e-5)."""
    torch.manual_seed(3)
    q, k, v = (torch.randn(2, 3, 1 + 4 * 16, 8) for _ in range(3))
    ours = divided_attention(q, k, v, 4, pattern, kernel=explicit_attention)
    torch.testing.assert_close(ours, reference_attention(q, k, v, 4, pattern), atol=1e-5, rtol=1e-5)


def test_kernel_choice_per_device_and_dtype() -> None:
    """SDPA everywhere except CPU bf16, where the fused CPU kernel is the slower one."""
    sdpa = torch.nn.functional.scaled_dot_product_attention
    assert _kernel_for(torch.zeros(1, dtype=torch.float32)) is sdpa
    assert _kernel_for(torch.zeros(1, dtype=torch.float16)) is sdpa
    assert _kernel_for(torch.zeros(1, dtype=torch.bfloat16)) is explicit_attention
    assert _kernel_for(torch.zeros(1, dtype=torch.bfloat16, device="meta")) is sdpa


@pytest.mark.parametrize("pattern", ["space", "time"])
def test_cpu_bf16_attention_is_as_accurate_as_sdpa(pattern: str) -> None:
    """In bf16 the explicit kernel's error against an fp64 reference stays within bf16 rounding,
    comparable to the fused kernel's, for the output and for the gradients."""
    torch.manual_seed(4)
    q, k, v = (torch.randn(2, 3, 1 + 4 * 16, 8, dtype=torch.float64) for _ in range(3))
    weights = torch.linspace(-1, 1, 24, dtype=torch.float64)

    def run(fn, dtype):
        leaves = [t.to(dtype).clone().requires_grad_() for t in (q, k, v)]
        out = fn(*leaves, 4, pattern)
        (out.double() * weights).sum().backward()
        return [out.double()] + [t.grad.double() for t in leaves]

    exact = run(reference_attention, torch.float64)
    for kernel in (None, torch.nn.functional.scaled_dot_product_attention):
        got = run(lambda *a, kernel=kernel: divided_attention(*a, kernel=kernel), torch.bfloat16)
        for g, e in zip(got, exact, strict=True):
            assert (g - e).abs().max() < 0.02 * e.abs().max()


def test_reference_is_not_joint_attention() -> None:
    """Guard: the grouping matters (a patch of frame 0 must not see frame 1 in space attention)."""
    torch.manual_seed(0)
    q, k, v = (torch.randn(1, 2, 1 + 2 * 4, 8) for _ in range(3))
    space = reference_attention(q, k, v, 2, "space")
    time = reference_attention(q, k, v, 2, "time")
    joint = torch.softmax(q @ k.transpose(-1, -2) / 8**0.5, -1) @ v
    joint = joint.transpose(1, 2).reshape(1, 9, 16)
    torch.testing.assert_close(space[:, 0], joint[:, 0])  # CLS: joint in both
    torch.testing.assert_close(time[:, 0], joint[:, 0])
    assert (space[:, 1:] - joint[:, 1:]).abs().max() > 1e-3
    assert (time[:, 1:] - space[:, 1:]).abs().max() > 1e-3


@pytest.mark.parametrize("frames", [1, 2, 4, 8])
def test_video_model_equals_reference_forward_and_backward(frames: int) -> None:
    torch.manual_seed(0)
    model = SpaceTimeTransformer(
        img_size=32, patch_size=8, embed_dim=48, depth=2, num_heads=4, num_frames=8
    )
    _randomise_time_attention(model, seed=frames)
    video = torch.randn(2, frames, 3, 32, 32)

    def run(fn) -> tuple[torch.Tensor, list[torch.Tensor]]:
        model.zero_grad()
        model.set_attention(fn)
        out = model.forward_tokens(video)
        (out * torch.linspace(-1, 1, out.shape[-1])).sum().backward()
        return out.detach(), [p.grad.clone() for p in model.parameters()]

    out_ref, grads_ref = run(reference_attention)
    out, grads = run(divided_attention)
    torch.testing.assert_close(out, out_ref, atol=1e-5, rtol=1e-5)
    for g, g_ref in zip(grads, grads_ref, strict=True):
        torch.testing.assert_close(g, g_ref, atol=1e-4, rtol=1e-4)


def test_time_attention_starts_at_zero() -> None:
    torch.manual_seed(0)
    model = SpaceTimeTransformer(
        img_size=32, patch_size=8, embed_dim=48, depth=1, num_heads=4, num_frames=1
    )
    block = model.blocks[0]
    x = torch.randn(2, 1 + 16, 48)
    out = block.timeattn(block.norm3(x), 1, "time")
    assert torch.equal(out, torch.zeros_like(out))
    assert torch.equal(block.timeattn.qkv.weight, torch.zeros(144, 48))
    assert torch.equal(block.timeattn.proj.weight, torch.ones(48, 48))


def test_all_ones_projection_is_invisible_behind_norm1() -> None:
    """An observation about the official design (docs/model.md): with ``proj`` all ones the time
    attention adds the same value to every feature of a token, which ``norm1`` removes; so its
    ``qkv`` has no effect and gets (up to rounding) no gradient until ``proj`` moves."""
    torch.manual_seed(0)
    model = SpaceTimeTransformer(
        img_size=32, patch_size=8, embed_dim=48, depth=1, num_heads=4, num_frames=2
    )
    video = torch.randn(2, 2, 3, 32, 32)
    model(video).square().sum().backward()
    blk = model.blocks[0]
    assert blk.timeattn.qkv.weight.grad.norm() < 1e-5 * blk.attn.qkv.weight.grad.norm()
    before = model(video)
    with torch.no_grad():
        blk.timeattn.qkv.weight.normal_(0, 0.5)
        blk.timeattn.qkv.bias.normal_(0, 0.5)
    torch.testing.assert_close(model(video), before, atol=1e-5, rtol=1e-5)
    with torch.no_grad():
        blk.timeattn.proj.weight.normal_(0, 0.5)  # a general proj makes it visible
    assert (model(video) - before).abs().max() > 1e-3


def test_residual_skips_to_block_input() -> None:
    """``y = x + attn(norm1(x + timeattn(norm3(x))))``: time output enters only via space attn."""
    torch.manual_seed(0)
    model = SpaceTimeTransformer(
        img_size=32, patch_size=8, embed_dim=48, depth=1, num_heads=4, num_frames=2
    )
    _randomise_time_attention(model, seed=3)
    blk = model.blocks[0]
    x = torch.randn(1, 1 + 2 * 16, 48)
    t = x + blk.timeattn(blk.norm3(x), 2, "time")
    y = x + blk.attn(blk.norm1(t), 2, "space")
    expected = y + blk.mlp(blk.norm2(y))
    torch.testing.assert_close(blk(x, 2), expected)
    wrong = t + blk.attn(blk.norm1(t), 2, "space")  # TimeSformer's residual
    wrong = wrong + blk.mlp(blk.norm2(wrong))
    assert (blk(x, 2) - wrong).abs().max() > 1e-3


def test_temporal_table_sliced_and_cls_has_no_temporal_row() -> None:
    model = SpaceTimeTransformer(
        img_size=16, patch_size=8, embed_dim=8, depth=0, num_heads=2, num_frames=4
    )
    with torch.no_grad():
        model.patch_embed.proj.weight.zero_()
        model.patch_embed.proj.bias.zero_()
        model.cls_token.fill_(100.0)
        model.pos_embed.copy_(torch.arange(5.0).view(1, 5, 1).expand(1, 5, 8))
        model.temporal_embed.copy_((10.0 * torch.arange(1.0, 5.0)).view(1, 4, 1).expand(1, 4, 8))
    tokens, frames = model.embed(torch.zeros(1, 2, 3, 16, 16))
    assert frames == 2
    assert tokens[0, :, 0].tolist() == [100.0, 11, 12, 13, 14, 21, 22, 23, 24]


def test_bad_inputs_are_refused() -> None:
    model = SpaceTimeTransformer(
        img_size=32, patch_size=8, embed_dim=48, depth=1, num_heads=4, num_frames=2
    )
    with pytest.raises(ValueError, match="1..2"):
        model(torch.zeros(1, 3, 3, 32, 32))
    with pytest.raises(ValueError, match="32x32"):
        model(torch.zeros(1, 1, 3, 16, 16))
    with pytest.raises(ValueError, match=r"\(B, F, 3, H, W\)"):
        model(torch.zeros(1, 3, 32, 32))


def test_gradient_checkpointing_gives_the_same_gradients() -> None:
    torch.manual_seed(0)
    model = SpaceTimeTransformer(
        img_size=32, patch_size=8, embed_dim=48, depth=2, num_heads=4, num_frames=4
    )
    _randomise_time_attention(model, seed=1)
    model.train()
    video = torch.randn(2, 4, 3, 32, 32)
    grads = []
    for ckpt in (False, True):
        model.zero_grad()
        model.grad_checkpointing = ckpt
        model(video).square().sum().backward()
        grads.append([p.grad.clone() for p in model.parameters()])
    for a, b in zip(*grads, strict=True):
        torch.testing.assert_close(a, b)


def test_bf16_autocast_runs_and_stays_close() -> None:
    torch.manual_seed(0)
    model = SpaceTimeTransformer(
        img_size=32, patch_size=8, embed_dim=48, depth=2, num_heads=4, num_frames=4
    )
    _randomise_time_attention(model, seed=2)
    video = torch.randn(2, 4, 3, 32, 32)
    ref = model(video)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = model(video)
    out.float().sum().backward()
    assert out.dtype == torch.float32  # the final LayerNorm runs in fp32 under autocast
    assert (out - ref).abs().max() < 0.1
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in model.parameters())


@pytest.mark.filterwarnings("ignore:.*(Flash attention kernel not used|fused kernels requires)")
def test_every_attention_call_is_eligible_for_the_fused_flash_kernel() -> None:
    """Forced onto the flash backend (CPU build here), SDPA raises for any call it cannot fuse
    (e.g. 5-D inputs silently fall back to the slow math kernel otherwise)."""
    from torch.nn.attention import SDPBackend, sdpa_kernel

    torch.manual_seed(0)
    model = SpaceTimeTransformer(
        img_size=32, patch_size=8, embed_dim=48, depth=1, num_heads=4, num_frames=4
    )
    _randomise_time_attention(model, seed=4)
    video = torch.randn(2, 4, 3, 32, 32)
    with sdpa_kernel(SDPBackend.FLASH_ATTENTION):
        model(video).sum().backward()
    with sdpa_kernel(SDPBackend.FLASH_ATTENTION), pytest.raises(RuntimeError, match="kernel"):
        q = torch.randn(2, 3, 4, 16, 8)
        torch.nn.functional.scaled_dot_product_attention(q, q, q)


def test_compiles_as_one_graph() -> None:
    """``torch.compile(fullgraph=True)`` raises on any graph break (dynamo capture only)."""
    torch.manual_seed(0)
    model = SpaceTimeTransformer(
        img_size=32, patch_size=8, embed_dim=48, depth=1, num_heads=4, num_frames=4
    )
    _randomise_time_attention(model, seed=5)
    video = torch.randn(2, 4, 3, 32, 32)
    compiled = torch.compile(model, backend="eager", fullgraph=True)
    out = compiled(video)
    out.sum().backward()
    torch.testing.assert_close(out, model(video))
