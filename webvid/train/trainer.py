"""The training loop: joint image+video batches, the frame curriculum, checkpoints, resume.

Takes a :class:`~webvid.train.recipe.TrainRecipe` and a run dir and produces, in the run dir,
``config.toml`` (the resolved recipe), ``metrics.jsonl`` (per logged step one line per source
trained since the last one, with its mean loss; one line per evaluation), ``latest.pt`` /
``checkpoints/step-*.pt`` / ``best.pt``, ``curves.png`` and ``manifest.json`` (written last). Rerunning the same command on a run dir with a ``latest.pt``
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

This module is the loop and its bookkeeping; building the model, optimiser, streams and resume
state is :mod:`webvid.train.setup`'s, and the run dir's files other than checkpoints (and
:class:`TrainSummary`) are :mod:`webvid.train.outputs`'s.
"""

from __future__ import annotations

import math
import time
from collections import Counter
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path
from typing import Any

import torch
from torch.nn.parallel import DistributedDataParallel

from webvid.config import to_dict
from webvid.errors import ConfigError, WebvidError
from webvid.log import NullProgress, Progress
from webvid.model.build import build_model
from webvid.train import dist as D
from webvid.train import state as S
from webvid.train.outputs import (
    LogWindow,
    TrainSummary,
    append_record,
    batch_note,
    finish_run,
    open_tensorboard,
    prepare_run_dir,
)
from webvid.train.recipe import TrainRecipe
from webvid.train.schedule import Plan, plan_from_recipe
from webvid.train.setup import (
    compile_video_model,
    inflate_in_place,
    inflate_init_table,
    make_loaders,
    make_optimizer,
    normalizer,
    resume_from,
)

__all__ = ["NullProgress", "TrainSummary", "Trainer", "inflate_in_place", "normalizer", "run"]


class Trainer:
    """One run; :meth:`run` is the loop. Build with :func:`run` rather than directly.

    Building it builds (or resumes) everything the loop needs, so a test can look at the model
    a resume would start from without training."""

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
        try:  # the recipe's global batch sizes over this many processes: checked before all else
            self.plan: Plan = plan_from_recipe(recipe, self.info.world_size)
        except ConfigError:
            D.shutdown(self.info)
            raise
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
        self.optimizer = make_optimizer(self.model, recipe.optim, self.plan.stages[0].lr)
        self.norm = normalizer(recipe.data.mean, recipe.data.std, self.info.device)
        self.step = 0
        self.counters: dict[str, Any] = {"seen": 0, "broken": {}}
        self.best: dict[str, Any] = {}
        self.data_state: dict[int, dict[int, tuple[int, int]]] = {
            i: {} for i in range(len(recipe.sources))
        }
        self.trained_frames = 1
        self._rng_to_restore: dict[str, Any] | None = None
        self.notes.append(batch_note(self.plan, [s.name for s in recipe.sources]))
        self._resume_or_init(init)
        self.tb = (
            open_tensorboard(self.run_dir)
            if recipe.train.tensorboard and self.info.is_main
            else None
        )

    # ---- set-up ------------------------------------------------------------------------------
    def _resume_or_init(self, init: Path | None) -> None:
        latest = self.run_dir / "latest.pt"
        if not latest.is_file():
            if init is not None or self.recipe.model.init is not None:
                self.trained_frames, note = inflate_init_table(
                    self.model, self.recipe, self.plan, self.base, init
                )
                if note:
                    self.notes.append(note)
            return
        point = resume_from(latest, self.recipe, self.model, self.optimizer, self.info)
        self.step, self.best = point.step, point.best
        self.counters = point.counters or self.counters
        self.trained_frames, self.data_state = point.trained_frames, point.data_state
        self._rng_to_restore = point.rng  # after the loaders are built: they draw seeds
        self.notes.append(f"resumed from {latest} at step {self.step}")
        if point.changed:
            self.notes.append("changed on resume: " + "; ".join(point.changed))

    # ---- the loop ---------------------------------------------------------------------------
    def run(self) -> TrainSummary:
        r, info = self.recipe, self.info
        t_start = time.monotonic()
        resumed_from = self.step
        if info.is_main:
            prepare_run_dir(self.run_dir, r, resumed_from)
        iters = make_loaders(
            r,
            self.plan,
            self.model,
            info,
            base=self.base,
            step=self.step,
            data_state=self.data_state,
        )
        if self._rng_to_restore is not None:  # after the loaders: building them draws seeds
            S.set_rng_state(self._rng_to_restore)
        total = self.plan.total_steps
        end = total if self.stop_after is None else min(total, self.stop_after)
        last_loss, evals = self._train_until(end, iters)
        # the last evaluation and checkpoint belong to the finished run only; a run stopped
        # early (stop_after) leaves just the latest.pt it resumes from
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
            info.world_size,
            self.plan.batch_table([s.name for s in r.sources]),
        )
        if info.is_main and self.step == total:
            finish_run(summary, r)
        if self.tb is not None:
            self.tb.close()
        D.barrier(info)
        return summary

    def _train_until(self, end: int, iters: list[Any]) -> tuple[float, list[dict[str, Any]]]:
        """Steps ``self.step`` up to ``end``: one batch, one optimiser step each; logs, evaluates
        and checkpoints on the recipe's cadence. Returns the last loss and the evaluations."""
        r, info = self.recipe, self.info
        total = self.plan.total_steps
        autocast = (
            torch.autocast(info.device.type, dtype=torch.bfloat16)
            if r.train.precision == "bf16"
            else nullcontext()
        )
        window = LogWindow()  # the steps since the last logged one, per source
        last_loss = math.nan
        evals: list[dict[str, Any]] = []
        self.ddp.train()
        # the bar starts where a resumed run starts, so its rate and ETA count this run's steps
        self.progress.update("train", advance=self.step, total=total)
        while self.step < end:
            stage = self.plan.stage_at(self.step)
            if window and self.step == self.plan.starts[stage]:  # a stage's mean stays its own
                self._log_step(stage - 1, self.plan.lr_at(self.step - 1), window)
            self._enter_stage(stage)
            src = self.plan.source_at(self.step)
            t0 = time.monotonic()
            batch = next(iters[src])
            window.wait += time.monotonic() - t0
            self._account(batch, src)
            lr = self.plan.lr_at(self.step)
            last_loss, grad_norm = self._optimizer_step(batch, lr, autocast)
            window.add(src, last_loss, grad_norm, batch["video"].shape[0] * info.world_size)
            self.step += 1
            self.progress.update("train", advance=1, **self._stage_fields(stage), lr=lr)
            if self.step % r.train.log_every_steps == 0 or self.step == end:
                self._log_step(stage, lr, window)
            # the final step's evaluation and checkpoint are run()'s, once, after the loop
            if (
                r.train.eval_every_steps
                and self.step % r.train.eval_every_steps == 0
                and self.step < total
            ):
                evals.append(self._evaluate())
            if self.step % r.train.checkpoint_every_steps == 0 and self.step < end:
                self._checkpoint(periodic=True)
        return last_loss, evals

    def _stage_fields(self, stage: int) -> dict[str, str]:
        """The progress display's stage and each source's frames in it (images stay 1-frame:
        showing the current batch's frames would flip between 4 and 1 in a 4-frame stage)."""
        names = [s.name for s in self.recipe.sources]
        frames = ", ".join(f"{n} {self.plan.frames_for(stage, i)}" for i, n in enumerate(names))
        return {"stage": self.plan.stages[stage].name, "frames": frames}

    def _enter_stage(self, stage: int) -> None:
        """At the first step of a stage with more frames than trained so far, inflate the
        temporal table from the trained rows. Only at that exact step: a run resumed later in
        the stage has the inflated table in its checkpoint already."""
        frames = self.plan.stages[stage].frames
        fix = self.plan.stages[stage].temporal_fix
        if stage > 0 and frames > self.trained_frames and self.step == self.plan.starts[stage]:
            inflate_in_place(self.model, self.trained_frames, fix)
            self._log(
                {
                    "event": "stage",
                    "step": self.step,
                    "stage": self.plan.stages[stage].name,
                    "frames": frames,
                    "temporal_fix": fix,
                }
            )
        self.trained_frames = max(self.trained_frames, frames)

    def _optimizer_step(
        self, batch: dict[str, Any], lr: float, autocast: AbstractContextManager[Any]
    ) -> tuple[float, float | None]:
        """Forward, loss over the global batch, backward, clip, step. Returns the loss and the
        gradient norm before clipping (None without clipping)."""
        info = self.info
        for g in self.optimizer.param_groups:
            g["lr"] = lr
        with autocast:
            text_emb, video_emb = self.ddp(batch["text"], self.norm(batch["video"]))
        # every rank's embeddings as negatives; the loss is computed in fp32 even under bf16
        text_all = D.gather_with_grad(text_emb.float(), info)
        video_all = D.gather_with_grad(video_emb.float(), info)
        loss = self.model.loss(text_all, video_all)
        # DDP averages gradients over ranks; scaling back up gives the single-process gradient
        (loss * info.world_size).backward()
        grad_norm = None
        clip = self.recipe.optim.grad_clip_norm
        if clip > 0:
            grad_norm = float(torch.nn.utils.clip_grad_norm_(self.model.parameters(), clip))
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        value = float(loss.detach())
        if not math.isfinite(value):
            raise WebvidError(f"loss became {value} at step {self.step}; lower the lr or use fp32")
        return value, grad_norm

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
    def _log(self, record: dict[str, Any]) -> None:
        if self.info.is_main:  # one metrics.jsonl per run, not per rank
            append_record(self.run_dir, record, self.tb)

    def _log_step(self, stage: int, lr: float, window: LogWindow) -> None:
        """One ``metrics.jsonl`` line per source trained since the last log, each with that
        source's mean loss over the window; then the window starts again."""
        now = time.monotonic()
        names = [s.name for s in self.recipe.sources]
        losses = []
        for part in window.records(now):
            src = part.pop("source")
            rec = {
                "step": self.step,
                "stage": self.plan.stages[stage].name,
                "frames": self.plan.frames_for(stage, src),
                "source": names[src],
                "batch": self.plan.global_batch(stage, src),
                "batch_per_process": self.plan.stages[stage].batch_sizes[src],
                **part,
                "lr": lr,
                "seen": self.counters["seen"],
                "broken": sum(self.counters["broken"].values()),
            }
            self._log(rec)
            losses.append(f"{names[src]} {rec['loss']:.4g}")
            speed, wait = rec["clips_per_s"], rec["data_wait_share"]
        if losses:
            self.progress.update(
                "train", loss=", ".join(losses), clips_s=round(speed, 1), wait=f"{wait:.0%}"
            )
        window.reset(now)

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
