"""The text side: a BERT-family encoder and its tokenizer, built from a local directory.

Takes a model reference (a local directory holding ``config.json`` and weights / a vocab, or a
hub name already in the local Hugging Face cache) and produces a ``transformers`` model and
tokenizer. Nothing is downloaded: the hub is never contacted (``local_files_only``).

``pretrained=False`` builds the model from the directory's ``config.json`` with random weights;
``distilbert-base-uncased`` (the paper's default) is also known without any file, so the base
configuration can be built offline. Size overrides (layers, hidden, heads) shrink a config for
CPU tests; they only apply to random-weight builds.
"""

from __future__ import annotations

import inspect
import logging
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from webvid.errors import InputError

log = logging.getLogger(__name__)

DEFAULT_TEXT_MODEL = "distilbert-base-uncased"


def _builtin_config(name: str) -> Any | None:
    """Configs we can build without files (random weights only)."""
    if name.rstrip("/").split("/")[-1] == DEFAULT_TEXT_MODEL:
        from transformers import DistilBertConfig

        return DistilBertConfig()  # the defaults are distilbert-base-uncased's config
    return None


#: where the docs say how to get the text model's files
WEIGHTS_DOC = "docs/model.md, 'The weights the paper used, and where to get them'"


def check_local_folder(ref: str) -> None:
    """A ``ref`` written as a path (absolute, ``./``, ``~``, or more than ``org/name``) must be
    an existing folder: an InputError saying what it must hold and how to get it, instead of
    the hub library's complaint that it is not a repo id."""
    path = Path(ref).expanduser()
    looks_like_path = path.is_absolute() or ref.startswith((".", "~")) or ref.count("/") > 1
    if not looks_like_path or path.is_dir():
        return
    name = path.name or ref
    raise InputError(
        f"text model folder {ref} does not exist. model.text_model (or --text-model) must be "
        f"a local folder with the model's config.json, weights (model.safetensors) and vocab "
        f"(vocab.txt or tokenizer.json); nothing is downloaded. On a machine with network: "
        f"huggingface-cli download {name} --local-dir {ref} (then copy the folder here); "
        f"see {WEIGHTS_DOC}"
    )


def text_config(
    ref: str,
    layers: int | None = None,
    hidden: int | None = None,
    heads: int | None = None,
) -> Any:
    """The ``transformers`` config for ``ref`` with optional size overrides."""
    from transformers import AutoConfig

    if _builtin_config(ref) is None:
        check_local_folder(ref)
    if Path(ref).is_dir():
        if not (Path(ref) / "config.json").is_file():
            raise InputError(f"text model directory {ref} has no config.json")
        cfg = AutoConfig.from_pretrained(ref)
    else:
        cfg = _builtin_config(ref)
        if cfg is None:
            try:
                cfg = AutoConfig.from_pretrained(ref, local_files_only=True)
            except OSError as exc:
                raise InputError(
                    f"text model {ref!r} is neither a local directory nor in the local cache "
                    f"(see {WEIGHTS_DOC}): {exc}"
                ) from None
    if layers is not None:
        cfg.num_hidden_layers = layers
    if hidden is not None:
        cfg.hidden_size = hidden
        inter = 4 * hidden
        if hasattr(cfg, "hidden_dim"):  # DistilBERT's name for the FFN width
            cfg.hidden_dim = inter
        if hasattr(cfg, "intermediate_size"):
            cfg.intermediate_size = inter
    if heads is not None:
        cfg.num_attention_heads = heads
    if cfg.hidden_size % cfg.num_attention_heads:
        raise InputError(
            f"text hidden size {cfg.hidden_size} is not divisible by {cfg.num_attention_heads} "
            "heads; set text_heads"
        )
    return cfg


def build_text_model(
    ref: str,
    pretrained: bool,
    layers: int | None = None,
    hidden: int | None = None,
    heads: int | None = None,
) -> nn.Module:
    """A ``transformers`` base model (no task head, no pooler) for ``ref``."""
    from transformers import AutoModel

    overrides = (layers, hidden, heads)
    if pretrained:
        check_local_folder(ref)
    cfg = text_config(ref, layers, hidden, heads)
    kwargs = _no_pooler_kwargs(cfg)
    if pretrained:
        if any(o is not None for o in overrides):
            raise InputError("text_layers / text_hidden / text_heads need text_pretrained = false")
        try:
            return AutoModel.from_pretrained(ref, local_files_only=True, **kwargs)
        except OSError as exc:
            raise InputError(f"cannot load pretrained text model {ref!r}: {exc}") from None
    return AutoModel.from_config(cfg, **kwargs)


def _no_pooler_kwargs(cfg: Any) -> dict[str, Any]:
    """BERT-like models get ``add_pooling_layer=False``: the pooler would be an unused weight."""
    from transformers import AutoModel

    try:
        cls = AutoModel._model_mapping[type(cfg)]
    except KeyError:
        return {}
    return (
        {"add_pooling_layer": False}
        if "add_pooling_layer" in inspect.signature(cls).parameters
        else {}
    )


def load_tokenizer(ref: str) -> Any:
    """The tokenizer saved with ``ref`` (a local directory with vocab files, or a cached name)."""
    from transformers import AutoTokenizer

    check_local_folder(ref)
    try:
        return AutoTokenizer.from_pretrained(ref, local_files_only=True)
    except (OSError, ValueError) as exc:
        raise InputError(
            f"no tokenizer for {ref!r}: give a local directory holding its vocab "
            f"(e.g. tokenizer.json or vocab.txt): {exc}"
        ) from None


def tokenize(
    tokenizer: Any, captions: list[str], max_chars: int = 350, max_length: int = 512
) -> dict[str, Tensor]:
    """The official text preprocessing: captions cut to ``max_chars``, padded to the longest."""
    return dict(
        tokenizer(
            [c[:max_chars] for c in captions],
            padding=True,
            truncation=True,
            max_length=max_length,
            return_tensors="pt",
        )
    )


def pool(hidden: Tensor, attention_mask: Tensor | None, mode: str) -> Tensor:
    """``cls``: the first token; ``mean``: mean over real (unmasked) tokens."""
    if mode == "cls":
        return hidden[:, 0]
    if mode == "mean":
        if attention_mask is None:
            return hidden.mean(dim=1)
        mask = attention_mask.to(hidden.dtype).unsqueeze(-1)
        return (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp_min(1.0)
    raise ValueError(f"unknown text_pooling {mode!r} (expected 'cls' or 'mean')")


def text_forward(model: nn.Module, batch: dict[str, Tensor], pooling: str) -> Tensor:
    """Run the encoder on a tokenizer output dict and pool to ``(B, hidden)``."""
    if "input_ids" not in batch:
        raise ValueError("encode_text expects the tokenizer's output dict (with input_ids)")
    device = next(model.parameters()).device
    ids = batch["input_ids"].to(device)
    mask = batch.get("attention_mask")
    mask = mask.to(device) if mask is not None else torch.ones_like(ids)
    out = model(input_ids=ids, attention_mask=mask)
    return pool(out.last_hidden_state, mask, pooling)
