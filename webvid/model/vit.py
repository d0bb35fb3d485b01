"""The Frozen-in-Time space-time ViT (``video_model``): divided space-time attention on SDPA.

Takes a clip tensor ``(B, F, 3, H, W)`` with ``F <= num_frames`` (an image is ``F = 1``) and
produces the clip's CLS feature after the final layer norm, ``(B, embed_dim)``.

Numerically this is the official ``SpaceTimeTransformer`` (``attention_style='frozen-in-time'``):

* tokens are frame-major (all patches of frame 0, then frame 1, ...), one CLS per clip;
  the spatial table ``pos_embed`` is tiled over frames, row ``f`` of ``temporal_embed`` is added
  to every patch of frame ``f``, the temporal table is sliced to the frames given;
* each block does ``t = x + timeattn(norm3(x))``, ``y = x + drop_path(attn(norm1(t)))``
  (the residual skips back to the block input ``x``), ``out = y + drop_path(mlp(norm2(y)))``;
* in both attentions the CLS query attends to every token of the clip, while each patch
  attends to ``[CLS] + its group``: the patches of its frame (space) or the patches at its
  spatial location in every frame (time);
* the time attention starts at zero: ``qkv`` weight and bias 0, ``proj`` weight all ones,
  ``proj`` bias 0, so a fresh block is exactly a ViT block.

Unlike the official code the attention runs on
:func:`torch.nn.functional.scaled_dot_product_attention` (fused / flash kernels), with groups
formed by reshapes, never by Python loops over frames or patches (on CPU in bf16 the same
groups go through :func:`explicit_attention`, which is faster there), and the time-attention init
is kept zero for every ``num_frames`` (the official ``num_frames == 1`` build re-randomises it).
Parameter names equal the official ones, so ``state_dict`` keys match key for key.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.checkpoint import checkpoint

Pattern = Literal["space", "time"]
# (q, k, v, frames, pattern) -> merged heads; q, k, v are (B, heads, 1 + frames*n, head_dim).
AttendFn = Callable[[Tensor, Tensor, Tensor, int, Pattern], Tensor]
# (q, k, v) -> softmax(q·kᵀ/√d)·v, SDPA's call shape; q, k, v are (N, heads, len, head_dim).
Kernel = Callable[[Tensor, Tensor, Tensor], Tensor]


def explicit_attention(q: Tensor, k: Tensor, v: Tensor) -> Tensor:
    """``softmax(q·kᵀ / √d)·v`` with the score matrix materialised (same call shape as SDPA).

    Used on CPU in bf16, where PyTorch's fused CPU kernel is the slow one: on an AVX-512 bf16
    CPU (torch 2.13, one thread) one ViT-S block's space + time attention, forward + backward,
    took 74 ms with SDPA against 34 ms this way at 196 patches per frame, and 242 against
    137 ms at 784 (``benchmarks/model_bench.py --precision bf16``, docs/benchmarks.md). In
    fp32, and on GPU, the fused kernels win, so everything else stays on SDPA.
    """
    scores = torch.matmul(q * q.shape[-1] ** -0.5, k.transpose(-2, -1))
    return torch.matmul(scores.softmax(dim=-1), v)


def _kernel_for(q: Tensor) -> Kernel:
    """SDPA, except on CPU in bf16 (see :func:`explicit_attention`)."""
    if q.device.type == "cpu" and q.dtype == torch.bfloat16:
        return explicit_attention
    return F.scaled_dot_product_attention


def divided_attention(
    q: Tensor, k: Tensor, v: Tensor, frames: int, pattern: Pattern, kernel: Kernel | None = None
) -> Tensor:
    """Frozen-in-Time divided attention with SDPA; returns ``(B, L, heads * head_dim)``.

    ``q, k, v``: ``(B, h, L, d)`` with ``L = 1 + frames * n`` (CLS first, frame-major patches),
    unscaled (SDPA applies ``d ** -0.5``). Every SDPA call gets 4-D ``(N, h, len, d)`` tensors
    with a unit-stride last dimension, which the fused CUDA kernels (flash, memory-efficient)
    require; groups are formed by reshapes, so there is no Python loop over frames or patches.
    ``kernel`` (SDPA's call shape) overrides the per-device choice of :func:`_kernel_for`.
    """
    if pattern not in ("space", "time"):
        raise ValueError(f"unknown attention pattern {pattern!r} (expected 'space' or 'time')")
    b, h, length, d = q.shape
    n = (length - 1) // frames
    attend = kernel or _kernel_for(q)
    # CLS query: joint attention over every token of the clip.
    cls_out = attend(q[:, :, :1], k, v)  # (B, h, 1, d)
    qt, kt, vt = (t.transpose(1, 2) for t in (q, k, v))  # token-major (B, L, h, d) views

    def groups(t: Tensor) -> Tensor:
        """Patches as (B, groups, group_len, h, d): per frame (space) or per location (time)."""
        t = t[:, 1:].unflatten(1, (frames, n))  # (B, F, n, h, d)
        return t if pattern == "space" else t.transpose(1, 2)

    g, glen = (frames, n) if pattern == "space" else (n, frames)
    qg = groups(qt).reshape(b * g, glen, h, d)
    # keys / values: the clip's CLS in front of every group → (B*g, 1 + glen, h, d)
    kg = torch.cat([kt[:, None, :1].expand(b, g, 1, h, d), groups(kt)], dim=2)
    vg = torch.cat([vt[:, None, :1].expand(b, g, 1, h, d), groups(vt)], dim=2)
    out = attend(
        qg.transpose(1, 2),
        kg.view(b * g, glen + 1, h, d).transpose(1, 2),
        vg.view(b * g, glen + 1, h, d).transpose(1, 2),
    ).transpose(1, 2)  # (B*g, glen, h, d)
    if pattern == "space":
        patches = out.reshape(b, frames * n, h * d)
    else:
        patches = out.reshape(b, n, frames, h * d).transpose(1, 2).reshape(b, frames * n, h * d)
    return torch.cat([cls_out.transpose(1, 2).reshape(b, 1, h * d), patches], dim=1)


class VarAttention(nn.Module):
    """Multi-head attention with the official names (``qkv``, ``proj``) and a pluggable kernel."""

    def __init__(self, dim: int, num_heads: int, zero_init: bool = False) -> None:
        super().__init__()
        if dim % num_heads:
            raise ValueError(f"embed_dim {dim} is not divisible by num_heads {num_heads}")
        self.num_heads = num_heads
        self.qkv = nn.Linear(dim, dim * 3, bias=True)
        self.proj = nn.Linear(dim, dim)
        self.zero_init = zero_init
        # Swappable kernel (tests and benchmarks plug the reference formulation in here).
        self.attend: AttendFn = divided_attention

    def reset_zero(self) -> None:
        """The official ``initialize='zeros'``: output exactly 0, gradients still reach qkv."""
        with torch.no_grad():
            self.qkv.weight.zero_()
            self.qkv.bias.zero_()
            self.proj.weight.fill_(1.0)
            self.proj.bias.zero_()

    def forward(self, x: Tensor, frames: int, pattern: Pattern) -> Tensor:
        b, length, dim = x.shape
        qkv = self.qkv(x).view(b, length, 3, self.num_heads, dim // self.num_heads)
        q, k, v = qkv.permute(2, 0, 3, 1, 4).unbind(0)  # each (B, h, L, d), views
        return self.proj(self.attend(q, k, v, frames, pattern))


class Mlp(nn.Module):
    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x: Tensor) -> Tensor:
        return self.fc2(self.act(self.fc1(x)))


class DropPath(nn.Module):
    """Stochastic depth per sample (identity in eval mode or at rate 0)."""

    def __init__(self, rate: float) -> None:
        super().__init__()
        self.rate = rate

    def forward(self, x: Tensor) -> Tensor:
        if self.rate == 0.0 or not self.training:
            return x
        keep = 1.0 - self.rate
        mask = x.new_empty((x.shape[0],) + (1,) * (x.ndim - 1)).bernoulli_(keep)
        return x * mask / keep


class SpaceTimeBlock(nn.Module):
    """Time attention (norm3) → space attention (norm1) with the residual to the block input → MLP."""

    def __init__(self, dim: int, num_heads: int, mlp_ratio: float, drop_path: float) -> None:
        super().__init__()
        # Registration order = the official state_dict order.
        self.norm1 = nn.LayerNorm(dim, eps=1e-6)
        self.attn = VarAttention(dim, num_heads)
        self.timeattn = VarAttention(dim, num_heads, zero_init=True)
        self.drop_path = DropPath(drop_path)
        self.norm2 = nn.LayerNorm(dim, eps=1e-6)
        self.mlp = Mlp(dim, int(dim * mlp_ratio))
        self.norm3 = nn.LayerNorm(dim, eps=1e-6)

    def forward(self, x: Tensor, frames: int) -> Tensor:
        t = x + self.timeattn(self.norm3(x), frames, "time")
        y = x + self.drop_path(self.attn(self.norm1(t), frames, "space"))
        return y + self.drop_path(self.mlp(self.norm2(y)))


class VideoPatchEmbed(nn.Module):
    """Per-frame ``Conv2d`` patchify: ``(B, F, 3, H, W)`` → ``(B, F * n, D)``, frame-major."""

    def __init__(self, img_size: int, patch_size: int, dim: int) -> None:
        super().__init__()
        if img_size % patch_size:
            raise ValueError(f"img_size {img_size} is not a multiple of patch_size {patch_size}")
        self.img_size = img_size
        self.num_patches = (img_size // patch_size) ** 2
        self.proj = nn.Conv2d(3, dim, kernel_size=patch_size, stride=patch_size)

    def forward(self, video: Tensor) -> Tensor:
        b, f = video.shape[:2]
        x = self.proj(video.flatten(0, 1))  # (B*F, D, h', w')
        return x.flatten(2).transpose(1, 2).reshape(b, f * self.num_patches, -1)


class SpaceTimeTransformer(nn.Module):
    """The ``video_model``; ``forward`` returns the CLS feature after the final norm."""

    def __init__(
        self,
        img_size: int = 224,
        patch_size: int = 16,
        embed_dim: int = 768,
        depth: int = 12,
        num_heads: int = 12,
        num_frames: int = 4,
        mlp_ratio: float = 4.0,
        drop_path_rate: float = 0.0,
        grad_checkpointing: bool = False,
    ) -> None:
        super().__init__()
        self.num_frames = num_frames
        self.embed_dim = embed_dim
        self.grad_checkpointing = grad_checkpointing
        self.patch_embed = VideoPatchEmbed(img_size, patch_size, embed_dim)
        n = self.patch_embed.num_patches
        self.cls_token = nn.Parameter(torch.zeros(1, 1, embed_dim))
        self.pos_embed = nn.Parameter(torch.zeros(1, n + 1, embed_dim))
        self.temporal_embed = nn.Parameter(torch.zeros(1, num_frames, embed_dim))
        rates = [drop_path_rate * i / (depth - 1) if depth > 1 else 0.0 for i in range(depth)]
        self.blocks = nn.ModuleList(
            SpaceTimeBlock(embed_dim, num_heads, mlp_ratio, rate) for rate in rates
        )
        self.norm = nn.LayerNorm(embed_dim, eps=1e-6)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """timm-style init (trunc-normal 0.02 linears, LN 1/0), then the zero time attention."""
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.trunc_normal_(m.weight, std=0.02)
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.LayerNorm):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
        # Conv patch embed keeps PyTorch's default init (as timm's PatchEmbed does).
        nn.init.trunc_normal_(self.pos_embed, std=0.02)
        nn.init.trunc_normal_(self.cls_token, std=0.02)
        nn.init.zeros_(self.temporal_embed)
        for block in self.blocks:
            block.timeattn.reset_zero()

    def set_attention(self, fn: AttendFn) -> None:
        """Use ``fn`` as the attention kernel of every block (default :func:`divided_attention`)."""
        for block in self.blocks:
            block.attn.attend = fn
            block.timeattn.attend = fn

    def embed(self, video: Tensor) -> tuple[Tensor, int]:
        """Patch tokens plus CLS and position tables: ``(B, 1 + F*n, D)`` and ``F``."""
        if video.ndim != 5 or video.shape[2] != 3:
            raise ValueError(f"expected video (B, F, 3, H, W), got {tuple(video.shape)}")
        frames = video.shape[1]
        if not 1 <= frames <= self.num_frames:
            raise ValueError(f"got {frames} frames; this model takes 1..{self.num_frames}")
        size = self.patch_embed.img_size
        if video.shape[-2:] != (size, size):
            raise ValueError(f"expected {size}x{size} frames, got {tuple(video.shape[-2:])}")
        x = self.patch_embed(video)
        n = self.patch_embed.num_patches
        pos = self.pos_embed[:, 1:].repeat(1, frames, 1)
        temporal = self.temporal_embed[:, :frames].repeat_interleave(n, dim=1)
        cls = (self.cls_token + self.pos_embed[:, :1]).expand(x.shape[0], -1, -1)
        return torch.cat([cls, x + pos + temporal], dim=1), frames

    def forward_tokens(self, video: Tensor) -> Tensor:
        """All tokens after the final norm, ``(B, 1 + F*n, D)``."""
        x, frames = self.embed(video)
        for block in self.blocks:
            if self.grad_checkpointing and self.training and torch.is_grad_enabled():
                x = checkpoint(block, x, frames, use_reentrant=False)
            else:
                x = block(x, frames)
        return self.norm(x)

    def forward(self, video: Tensor) -> Tensor:
        return self.forward_tokens(video)[:, 0]

    @property
    def patches_per_frame(self) -> int:
        return self.patch_embed.num_patches

    def extra_repr(self) -> str:
        return f"num_frames={self.num_frames}, grid={int(math.sqrt(self.patches_per_frame))}²"
