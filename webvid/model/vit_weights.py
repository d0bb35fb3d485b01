"""Pinned ImageNet ViT weights: find them offline and check they are the ones a recipe expects.

Takes a recipe's ``model.vit_weights`` reference — a local file or folder, ``timm:NAME`` (a timm
hub id, e.g. ``timm:vit_base_patch16_224.orig_in21k_ft_in1k``) or ``hf:ORG/NAME`` (e.g.
``hf:google/vit-base-patch16-224``) — with the identity the recipe expects
(``model.vit_weights_expect``) and produces the weights file plus the evidence of what it is
(:class:`VitWeights`). Hub ids are looked up in the local Hugging Face hub cache only
(``$HF_HUB_CACHE``, else ``$HF_HOME/hub``, else ``~/.cache/huggingface/hub``:
``models--ORG--NAME/snapshots/*/``); the network is never contacted, and a missing file is an
:class:`~webvid.errors.InputError` saying where to put it. An id the table of
:data:`EQUIVALENT` knows is also found under its equivalent ids (the paper's ViT-B/16 is
``timm/vit_base_patch16_224.orig_in21k_ft_in1k``, ``google/vit-base-patch16-224`` and timm
0.4's ``jx_vit_base_p16_224-80ecf9dd.pth``: the same Google ImageNet-21k → 1k weights).

Evidence, all checkable offline: the ``config.json`` beside the weights (timm's
``architecture`` + ``pretrained_cfg.tag`` or ``hf_hub_id``; transformers' ``_name_or_path``),
the hub-cache folder name (``models--ORG--NAME``) and the file name (``jx_vit_base_p16_224-
80ecf9dd.pth``). The weights are accepted when some evidence names the expected identity (or an
equivalent) and none names another; otherwise a :class:`~webvid.errors.ConfigError` says what
was expected, what was found and how to override (``model.vit_weights_check = false``).
"""

from __future__ import annotations

import json
import logging
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from webvid.errors import ConfigError, InputError

log = logging.getLogger(__name__)

#: The paper's ViT-B/16-224 (ImageNet-21k pre-training, ImageNet-1k fine-tuning at 224).
PAPER_VIT = "vit_base_patch16_224.orig_in21k_ft_in1k"
#: Identity → the names the same weights go by (hub ids without ``timm/``, file stems).
EQUIVALENT: dict[str, tuple[str, ...]] = {
    PAPER_VIT: (
        PAPER_VIT,
        "google/vit-base-patch16-224",
        "jx_vit_base_p16_224-80ecf9dd",
        "jx_vit_base_p16_224",
    ),
}
#: timm names whose plain form meant different weights across timm versions: no evidence.
AMBIGUOUS = frozenset({"vit_base_patch16_224"})
_WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin", "open_clip_pytorch_model.bin")
_HUB_DIR = re.compile(r"^models--([^/]+?)--(.+)$")


@dataclass
class VitWeights:
    """A resolved weights file and what is known of its identity."""

    path: Path
    evidence: dict[str, str] = field(default_factory=dict)  # source → identity it names
    accepted: str = ""  # why it was accepted (or "unchecked")


def canonical(name: str) -> str:
    """An identity in its table form: ``timm/`` dropped, known aliases mapped to their key."""
    low = name.strip().lower().removeprefix("timm/").removeprefix("hf-hub:timm/")
    low = low.removesuffix(".pth").removesuffix(".bin").removesuffix(".safetensors")
    for key, names in EQUIVALENT.items():
        if low in names:
            return key
    return low


def hub_cache() -> Path:
    """The local Hugging Face hub cache folder (never created, never downloaded into)."""
    if os.environ.get("HF_HUB_CACHE"):
        return Path(os.environ["HF_HUB_CACHE"]).expanduser()
    if os.environ.get("HF_HOME"):
        return Path(os.environ["HF_HOME"]).expanduser() / "hub"
    return Path.home() / ".cache" / "huggingface" / "hub"


def _hub_ids(ref: str) -> list[str]:
    """``timm:NAME`` / ``hf:ORG/NAME`` → the hub ids to look for, the ref's own first."""
    kind, _, name = ref.partition(":")
    own = f"timm/{name}" if kind == "timm" and "/" not in name else name
    ids = [own]
    for alias in EQUIVALENT.get(canonical(own), ()):
        hub = f"timm/{alias}" if "/" not in alias else alias
        if not alias.startswith("jx_") and hub not in ids:
            ids.append(hub)
    return ids


def _weights_in(folder: Path) -> Path | None:
    for name in _WEIGHT_FILES:
        if (folder / name).is_file():
            return folder / name
    return None


def _snapshot(repo: Path) -> Path | None:
    """The weights of a cached repo: the ``refs/main`` snapshot first, then any other."""
    snaps = repo / "snapshots"
    ref = repo / "refs" / "main"
    order: list[Path] = []
    if ref.is_file():
        order.append(snaps / ref.read_text().strip())
    if snaps.is_dir():
        order += sorted(p for p in snaps.iterdir() if p.is_dir())
    for snap in order:
        found = _weights_in(snap)
        if found is not None:
            return found
    return None


def find_in_hub_cache(ref: str, cache: Path | None = None) -> Path:
    """The weights file for a ``timm:`` / ``hf:`` ref in the local hub cache, or an InputError."""
    cache = cache if cache is not None else hub_cache()
    ids = _hub_ids(ref)
    tried = [cache / ("models--" + hub.replace("/", "--")) for hub in ids]
    for repo in tried:
        found = _snapshot(repo)
        if found is not None:
            return found
    first = tried[0] / "snapshots" / "<any>"
    raise InputError(
        f"ViT weights {ref!r} are not in the local Hugging Face cache (looked in "
        f"{', '.join(str(t) for t in tried)}); nothing is downloaded. On a machine with network "
        f"run `huggingface-cli download {ids[0]}` and copy its cache folder here, or put "
        f"model.safetensors and config.json in {first}, or set model.vit_weights to a local "
        "file or folder (see docs/model.md)"
    )


def locate(ref: str, base: Path | None = None, cache: Path | None = None) -> Path:
    """A weights file for ``ref``: a hub ref from the cache, or a local file/folder."""
    if ref.startswith(("timm:", "hf:")):
        return find_in_hub_cache(ref, cache)
    path = Path(ref).expanduser()
    if not path.is_absolute() and base is not None:
        path = base / path
    if path.is_dir():
        found = _weights_in(path)
        if found is None:
            raise InputError(f"ViT weights folder {path} holds none of {_WEIGHT_FILES}")
        return found
    if not path.is_file():
        raise InputError(f"ViT weights not found: {path} (see docs/model.md for where to get them)")
    return path


def _config_identity(config: Path) -> str | None:
    try:
        data = json.loads(config.read_text())
    except (OSError, ValueError) as exc:
        raise InputError(
            f"{config}: unreadable config.json beside the ViT weights: {exc}"
        ) from None
    if not isinstance(data, dict):
        return None
    pre = data.get("pretrained_cfg") if isinstance(data.get("pretrained_cfg"), dict) else {}
    arch = data.get("architecture")
    if isinstance(arch, str) and isinstance(pre.get("tag"), str) and pre["tag"]:
        return f"{arch}.{pre['tag']}"
    if isinstance(pre.get("hf_hub_id"), str):
        return pre["hf_hub_id"]
    name = data.get("_name_or_path")
    if isinstance(name, str) and re.fullmatch(r"[\w.-]+/[\w.-]+", name):  # a hub id, not a path
        return name
    return arch if isinstance(arch, str) else None


def evidence(path: Path) -> dict[str, str]:
    """What names these weights: ``config.json`` beside them, a hub folder, the file name."""
    out: dict[str, str] = {}
    config = path.parent / "config.json"
    if config.is_file():
        ident = _config_identity(config)
        if ident:
            out[str(config)] = ident
    for parent in path.parents:
        m = _HUB_DIR.match(parent.name)
        if m:
            out[f"hub folder {parent.name}"] = f"{m.group(1)}/{m.group(2)}"
            break
    stem = path.name
    for suffix in (".safetensors", ".pth", ".bin", ".pt"):
        stem = stem.removesuffix(suffix)
    if any(stem.startswith(a) for a in EQUIVALENT[PAPER_VIT] if a.startswith("jx_")):
        out[f"file name {path.name}"] = stem
    return out


def check_identity(path: Path, expect: str, found: dict[str, str]) -> str:
    """Why ``path`` passes as ``expect``, or a ConfigError naming what was found and the way out."""
    want = canonical(expect)
    named = {src: canonical(ident) for src, ident in found.items()}
    clear = {src: ident for src, ident in named.items() if ident not in AMBIGUOUS}
    match = [src for src, ident in clear.items() if ident == want]
    other = {src: found[src] for src, ident in clear.items() if ident != want}
    override = (
        "set model.vit_weights_check = false in the recipe to use them anyway, or point "
        f"model.vit_weights at the expected weights ({', '.join(EQUIVALENT.get(want, (want,)))})"
    )
    if other:
        seen = "; ".join(f"{src} says {ident!r}" for src, ident in other.items())
        raise ConfigError(f"ViT weights {path} are not {expect!r}: {seen}; {override}")
    if not match:
        seen = (
            "; ".join(f"{src} says {found[src]!r} (ambiguous)" for src in named)
            or "no config.json beside them, no hub-cache folder, no known file name"
        )
        raise ConfigError(
            f"cannot tell whether ViT weights {path} are {expect!r} ({seen}); put the "
            f"config.json of the hub release beside the file, or {override}"
        )
    return "; ".join(f"{src} says {found[src]!r}" for src in match)


def resolve_vit_weights(
    ref: str,
    expect: str | None = None,
    check: bool = True,
    base: Path | None = None,
    cache: Path | None = None,
) -> VitWeights:
    """Locate ``ref`` and check it against ``expect`` (implied by a hub ref when not given)."""
    path = locate(ref, base, cache)
    if expect is None and ref.startswith(("timm:", "hf:")):
        expect = ref.partition(":")[2]
    found = evidence(path)
    out = VitWeights(path, found)
    if expect is None:
        out.accepted = "no identity expected"
    elif not check:
        out.accepted = "unchecked (model.vit_weights_check = false)"
        log.warning("ViT weights %s used without checking they are %s: %s", path, expect, found)
    else:
        out.accepted = check_identity(path, expect, found)
    log.info("ViT weights %s (%s)", path, out.accepted)
    return out
