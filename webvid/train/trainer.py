"""The training loop: joint image+video batches, the frame curriculum, checkpoints, resume.

Takes a :class:`~webvid.train.recipe.TrainRecipe` and a run dir and produces, in the run dir,
``config.toml`` (the resolved recipe), ``metrics.jsonl`` (one line per logged step and per
evaluation), ``latest.pt`` / ``checkpoints/step-*.pt`` / ``best.pt``, ``curves.png`` and
``manifest.json`` (written last). Rerunning the same command on a run dir with a ``latest.pt``
resumes it: model, optimiser, step, stage, RNG states and every worker's stream position, so
the resumed loss curve is the uninterrupted one. A resume names every setting that differs
from the checkpoint's recipe and refuses the ones the run depends on
(:func:`webvid.train.state.check_resume_settings`), and drops a torn last line of
``metrics.jsonl`` (:func:`webvid.train.state.metrics_to_keep`).

One optimiser step per batch; batches come from the sources in the plan's fixed cycle (1:1
video:image by default, as the official trainer), each with its own negatives. At the first
step of a stage with more frames than any before, the temporal table is inflated from the rows
trained so far (``temporal_fix``); the data workers already build that stage's batches because
they follow the same plan. Under ``torchrun`` the loss uses the global batch's negatives
(:func:`webvid.train.dist.gather_with_grad`) and equals the single-process loss.
"""

from __future__ import annotations

import json
import logging
import math
import time
from collections import Counter
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch.nn.parallel import DistributedDataParallel

from webvid.clips.sample import ClipOptions, Tokenize
from webvid.clips.stream import expand_shards
from webvid.config import dump_toml, to_dict
from webvid.errors import ConfigError, InputError, WebvidError
from webvid.io import disk_full_error, write_manifest, write_text
from webvid.log import NullProgress, Progress
from webvid.model.build import build_model
from webvid.model.checkpoint import inflate_temporal_embed
from webvid.model.model import FrozenInTime
from webvid.train import dist as D
from webvid.train import state as S
from webvid.train.data import TrainStream, make_train_loader
from webvid.train.recipe import TrainRecipe
from webvid.train.schedule import Plan, plan_from_recipe

log = logging.getLogger(__name__)


def compile_video_model(model: FrozenInTime, backend: str, device: torch.device) -> None:
    """``torch.compile`` the space-time ViT in place: its ``state_dict`` keys stay official.

    The text model stays eager (its sequence lengths vary from batch to batch). With torch
    2.11's inductor on CUDA, the coalescing-tiling analysis asserted on this graph; it is
    switched off for the run (measured on an H200: the compiled step is still 1.41x eager).
    """
    if backend == "inductor" and device.type == "cuda":
        import torch._inductor.config as inductor_config

        if getattr(inductor_config.triton, "coalesce_tiling_analysis", False):
            inductor_config.triton.coalesce_tiling_analysis = False
            log.info("torch.compile: inductor's coalescing-tiling analysis off (torch 2.11 bug)")
    try:
        model.video_model.compile(backend=backend, dynamic=False)
    except Exception as exc:  # an unknown backend name, a torch without dynamo support
        raise ConfigError(f"train.compile_backend={backend!r}: {exc}") from exc
    log.info("video model compiled with torch.compile(backend=%r)", backend)


@dataclass
class TrainSummary:
    run_dir: Path
    steps: int
    resumed_from: int
    last_loss: float
    broken: dict[str, int]
    seen: int
    evals: list[dict[str, Any]] = field(default_factory=list)
    best: dict[str, Any] = field(default_factory=dict)
    wall_s: float = 0.0
    notes: list[str] = field(default_factory=list)


def normalizer(mean: tuple[float, ...], std: tuple[float, ...], device: torch.device):
    m = torch.tensor(mean, device=device).view(1, 1, 3, 1, 1) * 255.0
    s = torch.tensor(std, device=device).view(1, 1, 3, 1, 1) * 255.0

    def apply(video_u8: torch.Tensor) -> torch.Tensor:
        return (video_u8.to(device, non_blocking=True).float() - m) / s

    return apply


def _video_model(model: torch.nn.Module) -> torch.nn.Module:
    return getattr(model, "module", model).video_model


def inflate_in_place(model: torch.nn.Module, trained_frames: int, mode: str) -> None:
    """Rebuild the temporal table from its first ``trained_frames`` rows (curriculum step)."""
    table = _video_model(model).temporal_embed
    with torch.no_grad():
        table.copy_(
            inflate_temporal_embed(table[:, :trained_frames].detach(), table.shape[1], mode)
        )


class Trainer:
    """One run; :meth:`run` is the loop. Build with :func:`run` rather than directly."""

    def __init__(
        self,
        recipe: TrainRecipe,
        run_dir: Path,
        *,
        base: Path | None,
        init: Path | None,
        progress: Progress,
        stop_after: int | None,
    ) -> None:
        self.recipe, self.run_dir, self.base = recipe, Path(run_dir), base
        self.progress, self.stop_after = progress, stop_after
        self.info = D.init_distributed(recipe.train.dist_backend, recipe.train.device)
        self.plan: Plan = plan_from_recipe(recipe)
        torch.manual_seed(recipe.seed)  # same initial weights on every rank
        model, self.notes = build_model(
            recipe.model, base, init, grad_checkpointing=recipe.train.grad_checkpointing
        )
        self.model = model.to(self.info.device)
        if recipe.train.compile:
            compile_video_model(self.model, recipe.train.compile_backend, self.info.device)
        self.ddp: torch.nn.Module = self.model
        if self.info.distributed:
            ids = [self.info.device.index] if self.info.device.type == "cuda" else None
            self.ddp = DistributedDataParallel(self.model, device_ids=ids)
        self.optimizer = self._optimizer()
        self.norm = normalizer(recipe.data.mean, recipe.data.std, self.info.device)
        self.step = 0
        self.counters: dict[str, Any] = {"seen": 0, "broken": {}}
        self.best: dict[str, Any] = {}
        self.data_state: dict[int, dict[int, tuple[int, int]]] = {
            i: {} for i in range(len(recipe.sources))
        }
        self.trained_frames = 1
        self._rng_to_restore: dict[str, Any] | None = None
        self._resume_or_init(init)
        self.tb = self._tensorboard() if recipe.train.tensorboard and self.info.is_main else None

    def _tensorboard(self) -> Any:
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:
            raise ConfigError(
                "train.tensorboard = true needs the tensorboard package "
                "(pip install tensorboard); metrics.jsonl has the same figures"
            ) from None
        return SummaryWriter(str(self.run_dir / "tensorboard"))

    # ---- set-up ------------------------------------------------------------------------------
    def _optimizer(self) -> torch.optim.Optimizer:
        o = self.recipe.optim
        decay, no_decay = [], []
        for name, p in self.model.named_parameters():
            (no_decay if p.ndim < 2 or "embed" in name or "token" in name else decay).append(p)
        groups = [
            {"params": decay, "weight_decay": o.weight_decay},
            {"params": no_decay, "weight_decay": 0.0},
        ]
        return torch.optim.AdamW(groups, lr=self.plan.stages[0].lr, betas=tuple(o.betas), eps=o.eps)

    def _resume_or_init(self, init: Path | None) -> None:
        latest = self.run_dir / "latest.pt"
        if not latest.is_file():
            if init is not None or self.recipe.model.init is not None:
                self._fix_init_table(init)
            return
        from webvid.model.checkpoint import load_checkpoint

        meta = S.load(latest)
        # before the weights: a changed model would otherwise fail as a shape mismatch
        changed = S.check_resume_settings(meta.get("recipe"), to_dict(self.recipe), latest)
        load_checkpoint(self.model, latest)
        self.optimizer.load_state_dict(meta["optim_state"])
        self.step = int(meta["step"])
        self.counters = meta.get("counters") or self.counters
        self.best = meta.get("best") or {}
        self.trained_frames = int(meta.get("frames", 1))
        ranks = meta["data_state"]
        if len(ranks) != self.info.world_size:
            raise InputError(
                f"{latest} was written by {len(ranks)} processes; resume with the same "
                f"number (got {self.info.world_size}) or set data.resume_data=reseed"
            )
        mine = ranks[self.info.rank]
        self.data_state = {
            int(s): {int(w): (int(v[0]), int(v[1])) for w, v in ws.items()}
            for s, ws in mine["streams"].items()
        }
        self._rng_to_restore = mine["rng"]  # after the loaders are built: they draw seeds
        self.notes.append(f"resumed from {latest} at step {self.step}")
        if changed:
            self.notes.append("changed on resume: " + "; ".join(changed))

    def _fix_init_table(self, init: Path | None) -> None:
        """``--init`` from a run trained on fewer frames: inflate its trained rows per the fix."""
        from webvid.model.build import resolve
        from webvid.model.checkpoint import read_checkpoint

        path = init or resolve(self.recipe.model.init, self.base)
        _, meta = read_checkpoint(path)
        frames = int(meta.get("frames") or 0)
        first = self.plan.stages[0].frames
        if 0 < frames < first:
            inflate_in_place(self.model, frames, self.recipe.model.init_temporal_fix)
            self.notes.append(
                f"temporal table {frames}->{first} ({self.recipe.model.init_temporal_fix})"
            )
        self.trained_frames = max(frames, 1)

    def _loaders(self) -> list[Any]:
        r = self.recipe
        nw = r.data.num_workers
        tok = Tokenize(self.model.config.tokenizer_ref, r.data.max_text_len)
        opts = ClipOptions(
            size=self.model.config.img_size,
            train=True,
            scale=r.data.crop_scale,
            ratio=r.data.crop_ratio,
            hflip=r.data.hflip,
            short_side=r.data.decode_short_side,
            caption_max_chars=r.data.caption_max_chars,
        )
        iters = []
        reseed = self.step if (self.step and r.data.resume_data == "reseed") else 0
        for i, src in enumerate(r.sources):
            shards = expand_shards(src.shards, self.base)
            resume = {} if reseed else self.data_state[i]
            stream = TrainStream(
                shards,
                src.kind,
                i,
                self.plan,
                opts,
                tok,
                seed=r.seed,
                rank=self.info.rank,
                world_size=self.info.world_size,
                shuffle_buffer=r.data.shuffle_buffer,
                resume=resume,
                num_workers=nw,
                reseed=reseed,
                worker_offset=self.plan.batches_before(i, self.step) % max(1, nw),
            )
            if reseed:  # a fresh stream: its batch numbering restarts where the plan is now
                stream.resume = {w: (self._first_j(i, w, nw), 0) for w in range(max(1, nw))}
            iters.append(iter(make_train_loader(stream, nw)))
        return iters

    def _first_j(self, source: int, worker: int, workers: int) -> int:
        b = self.plan.batches_before(source, self.step)
        workers = max(1, workers)
        return (b - worker + workers - 1) // workers

    # ---- the loop ---------------------------------------------------------------------------
    def run(self) -> TrainSummary:
        r, info = self.recipe, self.info
        t_start = time.monotonic()
        resumed_from = self.step
        if info.is_main:
            self._prepare_run_dir(resumed_from)
        iters = self._loaders()
        if self._rng_to_restore is not None:
            S.set_rng_state(self._rng_to_restore)
        total = self.plan.total_steps
        end = total if self.stop_after is None else min(total, self.stop_after)
        autocast = (
            torch.autocast(info.device.type, dtype=torch.bfloat16)
            if r.train.precision == "bf16"
            else nullcontext()
        )
        window = {"clips": 0, "wait": 0.0, "t": time.monotonic()}
        last_loss = math.nan
        evals: list[dict[str, Any]] = []
        self.ddp.train()
        while self.step < end:
            stage = self.plan.stage_at(self.step)
            frames = self.plan.stages[stage].frames
            if stage > 0 and frames > self.trained_frames and self.step == self.plan.starts[stage]:
                inflate_in_place(
                    self.model, self.trained_frames, self.plan.stages[stage].temporal_fix
                )
                self._log(
                    {
                        "event": "stage",
                        "step": self.step,
                        "stage": self.plan.stages[stage].name,
                        "frames": frames,
                        "temporal_fix": self.plan.stages[stage].temporal_fix,
                    }
                )
            self.trained_frames = max(self.trained_frames, frames)
            src = self.plan.source_at(self.step)
            t0 = time.monotonic()
            batch = next(iters[src])
            window["wait"] += time.monotonic() - t0
            self._account(batch, src)
            lr = self.plan.lr_at(self.step)
            for g in self.optimizer.param_groups:
                g["lr"] = lr
            with autocast:
                text_emb, video_emb = self.ddp(batch["text"], self.norm(batch["video"]))
            text_all = D.gather_with_grad(text_emb.float(), info)
            video_all = D.gather_with_grad(video_emb.float(), info)
            loss = self.model.loss(text_all, video_all)
            (loss * info.world_size).backward()
            grad_norm = None
            if r.optim.grad_clip_norm > 0:
                grad_norm = float(
                    torch.nn.utils.clip_grad_norm_(self.model.parameters(), r.optim.grad_clip_norm)
                )
            self.optimizer.step()
            self.optimizer.zero_grad(set_to_none=True)
            last_loss = float(loss.detach())
            if not math.isfinite(last_loss):
                raise WebvidError(
                    f"loss became {last_loss} at step {self.step}; lower the lr or use fp32"
                )
            window["clips"] += batch["video"].shape[0] * info.world_size
            self.step += 1
            if self.step % r.train.log_every_steps == 0 or self.step == end:
                self._log_step(stage, src, batch, last_loss, lr, grad_norm, window)
            self.progress.update(
                "train",
                advance=1,
                total=total,
                stage=self.plan.stages[stage].name,
                frames=batch["frames"],
                loss=last_loss,
                lr=lr,
            )
            if (
                r.train.eval_every_steps
                and self.step % r.train.eval_every_steps == 0
                and self.step < total
            ):
                evals.append(self._evaluate())
            if self.step % r.train.checkpoint_every_steps == 0 and self.step < end:
                self._checkpoint(periodic=True)
        if r.evals and (self.step == total) and (not evals or evals[-1]["step"] != self.step):
            evals.append(self._evaluate())
        self._checkpoint(periodic=self.step == total)
        summary = TrainSummary(
            self.run_dir,
            self.step,
            resumed_from,
            last_loss,
            dict(self.counters["broken"]),
            int(self.counters["seen"]),
            evals,
            dict(self.best),
            time.monotonic() - t_start,
            self.notes,
        )
        if info.is_main and self.step == total:
            self._finish(summary)
        if self.tb is not None:
            self.tb.close()
        D.barrier(info)
        return summary

    def _account(self, batch: dict[str, Any], src: int) -> None:
        expected = self.plan.batches_before(src, self.step)
        if batch["batch_index"] != expected:  # the plan and the stream disagree: a bug, stop
            raise RuntimeError(
                f"source {src}: got batch {batch['batch_index']}, expected {expected}"
            )
        self.data_state[src][int(batch["worker"])] = (int(batch["j"]) + 1, int(batch["pos"]))
        broken = Counter(self.counters["broken"])
        broken.update(batch["broken"])
        self.counters = {
            "seen": int(self.counters["seen"]) + int(batch["seen"]),
            "broken": dict(broken),
        }
        d = self.recipe.data
        n_broken = sum(broken.values())
        seen = self.counters["seen"]
        if seen >= d.broken_check_after and n_broken > d.max_broken_fraction * seen:
            reasons = ", ".join(f"{k}={v}" for k, v in broken.most_common())
            raise WebvidError(
                f"{n_broken} of {seen} samples were broken ({n_broken / seen:.1%} > "
                f"data.max_broken_fraction {d.max_broken_fraction:.1%}): {reasons}"
            )

    # ---- outputs ---------------------------------------------------------------------------
    def _prepare_run_dir(self, resumed_from: int) -> None:
        self.run_dir.mkdir(parents=True, exist_ok=True)
        (self.run_dir / "checkpoints").mkdir(exist_ok=True)
        write_text(self.run_dir / "config.toml", dump_toml(to_dict(self.recipe)))
        metrics = self.run_dir / "metrics.jsonl"
        if metrics.exists():  # a resumed run rewrites what came after its checkpoint
            # (and drops a torn last line, so appends start on a line of their own)
            keep = S.metrics_to_keep(metrics, resumed_from)
            write_text(metrics, "".join(k + "\n" for k in keep))

    def _log(self, record: dict[str, Any]) -> None:
        if not self.info.is_main:
            return
        path = self.run_dir / "metrics.jsonl"
        try:
            with open(path, "a", encoding="utf-8") as fh:
                fh.write(json.dumps(record) + "\n")
        except OSError as exc:  # a full disk: one line naming the file, not a traceback
            raise disk_full_error(exc, path) or exc from None
        if self.tb is not None:
            prefix = record.get("source", record.get("event", ""))
            for k, v in record.items():
                if isinstance(v, (int, float)) and k != "step":
                    self.tb.add_scalar(f"{prefix}/{k}" if "/" not in k else k, v, record["step"])

    def _log_step(
        self,
        stage: int,
        src: int,
        batch: dict[str, Any],
        loss: float,
        lr: float,
        grad_norm: float | None,
        window: dict[str, float],
    ) -> None:
        now = time.monotonic()
        dt = max(1e-9, now - window["t"])
        rec = {
            "step": self.step,
            "stage": self.plan.stages[stage].name,
            "frames": batch["frames"],
            "source": self.recipe.sources[src].name,
            "loss": loss,
            "lr": lr,
            "clips_per_s": window["clips"] / dt,
            "data_wait_share": min(1.0, window["wait"] / dt),
            "seen": self.counters["seen"],
            "broken": sum(self.counters["broken"].values()),
        }
        if grad_norm is not None:
            rec["grad_norm"] = grad_norm
        self._log(rec)
        self.progress.update(
            "train", clips_s=round(rec["clips_per_s"], 1), wait=f"{rec['data_wait_share']:.0%}"
        )
        window.update(clips=0, wait=0.0, t=now)

    def _evaluate(self) -> dict[str, Any]:
        from webvid.train.validate import evaluate_sets

        results = evaluate_sets(
            self.model,
            self.recipe,
            self.base,
            self.info,
            frames=self.plan.stages[self.plan.stage_at(max(0, self.step - 1))].frames,
        )
        rec = {"event": "eval", "step": self.step, **results}
        self._log(rec)
        metric = self.recipe.train.select_metric or (
            f"{self.recipe.evals[0].name}/t2v_R1" if self.recipe.evals else ""
        )
        value = results.get(metric)
        if value is not None and (not self.best or value > self.best["value"]):
            self.best = {"metric": metric, "value": value, "step": self.step}
            self._checkpoint(best=True)
        self.ddp.train()
        return rec

    def _checkpoint(self, periodic: bool = False, best: bool = False) -> None:
        mine = {
            "streams": {
                s: {w: list(v) for w, v in ws.items()} for s, ws in self.data_state.items()
            },
            "rng": S.rng_state(),
        }
        ranks = D.all_gather_object(mine, self.info)
        if self.info.is_main:
            stage = self.plan.stage_at(max(0, self.step - 1))
            kw = dict(
                step=self.step,
                stage=stage,
                frames=self.trained_frames,
                data_state=ranks,
                counters=self.counters,
                best=self.best,
                recipe=to_dict(self.recipe),
            )
            targets = [self.run_dir / "best.pt"] if best else [self.run_dir / "latest.pt"]
            if periodic:
                targets.append(self.run_dir / "checkpoints" / f"step-{self.step:07d}.pt")
            for path in targets:
                S.save(path, self.model, self.optimizer, **kw)
            if periodic:
                S.prune(self.run_dir / "checkpoints", self.recipe.train.keep_checkpoints)
        D.barrier(self.info)

    def _finish(self, summary: TrainSummary) -> None:
        from webvid.train.plots import plot_curves

        try:
            plot_curves(self.run_dir / "metrics.jsonl", self.run_dir / "curves.png")
        except Exception as exc:  # a plot is a convenience, never a failed run
            log.warning("could not draw curves.png: %s", exc)
        write_manifest(
            self.run_dir,
            "run",
            config=to_dict(self.recipe),
            counts={
                "steps": summary.steps,
                "seen": summary.seen,
                "broken": sum(summary.broken.values()),
            },
            broken=summary.broken,
            best=summary.best,
            last_loss=summary.last_loss,
        )


def run(
    recipe: TrainRecipe,
    run_dir: str | Path,
    *,
    base: Path | None = None,
    init: Path | None = None,
    progress: Progress | None = None,
    stop_after: int | None = None,
) -> TrainSummary:
    """Train (or resume) ``recipe`` into ``run_dir``. ``stop_after`` ends early after that step
    with a ``latest.pt`` (what a killed run leaves, at a known step; used by the resume test).

    The stage's entry point is :func:`webvid.train.run.run` (``run(recipe, inputs, out, *,
    progress, runner)``, the shape of every stage), which calls this; this one is kept as it
    was for scripts and tests that call it with the recipe's own sources."""
    trainer = Trainer(
        recipe,
        Path(run_dir),
        base=base,
        init=init,
        progress=progress or NullProgress(),
        stop_after=stop_after,
    )
    try:
        return trainer.run()
    finally:
        D.shutdown(trainer.info)
