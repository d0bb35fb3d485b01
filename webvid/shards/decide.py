"""Decisions that span clips, made in the parent in a fixed order: captions, verdicts, shards.

Takes the inputs (:class:`~webvid.shards.inputs.InputItem`), the recipe and, once the pool is
done, each input's :class:`~webvid.shards.records.ClipResult`; produces

* :func:`caption_facts`: each input's :class:`~webvid.shards.records.CaptionFacts` (clean
  caption, words, how many inputs share it, caption reasons); :func:`add_languages` adds the
  language while the pool works;
* :func:`decide`: one :class:`~webvid.shards.records.Verdict` per input (duplicates found in
  a stable order, so the result does not depend on which worker finished first; with a
  ``webvid score`` table, the model-score filters last);
* :func:`place`: kept clips split by a stable hash, sorted by clip id, cut into
  :class:`~webvid.shards.writer.ShardPlan` s; their verdicts get their key, shard and split;
* :func:`funnel`: how many inputs each first reason removed.

Pure apart from reading file sizes of staged frames (through :func:`webvid.shards.rows.tar_sample`).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, MutableMapping, Sequence
from dataclasses import replace

from webvid import contract
from webvid.shards import captions as cap
from webvid.shards import dedup, filters, writer
from webvid.shards.inputs import InputItem
from webvid.shards.modelscores import ModelScore, scores_for, semantic_excess
from webvid.shards.recipe import ShardRecipe
from webvid.shards.records import (
    CaptionFacts,
    ClipResult,
    Placement,
    ShardSample,
    Verdict,
)
from webvid.shards.rows import tar_sample

SPLITS = ("train", "val")


def _with_reasons(f: CaptionFacts, recipe: ShardRecipe) -> CaptionFacts:
    reasons = filters.caption_reasons(
        words=f.words, lang=f.lang, lang_score=f.lang_score, repeats=f.count, cfg=recipe.filters
    )
    return replace(f, reasons=tuple(reasons))


def caption_facts(items: Sequence[InputItem], recipe: ShardRecipe) -> dict[str, CaptionFacts]:
    """uid → clean caption, word count, templated count and their reasons (no language yet)."""
    cc = recipe.captions
    clean = {
        it.uid: (
            cap.clean_caption(it.caption_raw, cc.drop_phrases, cc.min_keyword_run)
            if cc.clean
            else (it.caption_raw or "").strip()
        )
        for it in items
    }
    counts = cap.caption_counts(clean.values())
    return {
        uid: _with_reasons(
            CaptionFacts(
                text=text,
                words=cap.word_count(text),
                lang=None,
                lang_score=None,
                count=counts.get(cap.template_key(text), 0),
                reasons=(),
            ),
            recipe,
        )
        for uid, text in clean.items()
    }


def add_languages(facts: MutableMapping[str, CaptionFacts], recipe: ShardRecipe) -> None:
    """Detect each caption's language and replace its facts (reasons updated) in ``facts``."""
    if not recipe.filters.languages:
        return
    for uid, f in facts.items():
        lang, score = cap.detect_language(f.text)
        facts[uid] = _with_reasons(replace(f, lang=lang, lang_score=score), recipe)


def _first_verdict(
    it: InputItem, caption: CaptionFacts, res: ClipResult | None, media_kind: str
) -> Verdict:
    """The verdict from the input's own facts, before duplicates are known."""
    if res is None:  # never processed: rejected while reading, or no file
        res = ClipResult(
            it.uid,
            want_output=False,
            reasons=(it.reject or "missing_media",),
            detail=it.reject_detail or it.media_path,
        )
    return Verdict(
        item=it,
        media_kind=media_kind,
        caption=caption,
        media=res.media,
        scores=res.scores,
        reasons=tuple(filters.ordered([*res.reasons, *caption.reasons])),
        detail=res.detail,
        transform=res.transform,
    )


def decide(
    items: Sequence[InputItem],
    captions: Mapping[str, CaptionFacts],
    results: Mapping[str, ClipResult],
    recipe: ShardRecipe,
    scores: Mapping[str, ModelScore] | None = None,
) -> dict[str, Verdict]:
    """uid → verdict (without a placement, which :func:`place` adds). With ``scores`` (a
    ``webvid score`` table by clip id) the model-score filters run last: see :func:`_by_model`."""
    first = {
        it.uid: _first_verdict(it, captions[it.uid], results.get(it.uid), recipe.media_kind)
        for it in items
    }
    # clips that pass everything else come first, by clip id: a rejected clip never makes its
    # good twin a duplicate
    order = sorted(items, key=lambda i: (bool(first[i.uid].reasons), i.clip_id, i.uid))
    dups = dedup.find_duplicates(
        (
            dedup.DedupItem(
                i.uid,
                i.clip_id,
                first[i.uid].media.sha256,
                i.source_id or i.clip_id,
                first[i.uid].scores.phash,
                first[i.uid].scores.colour,
            )
            for i in order
            if i.uid in results
        ),
        recipe.dedup,
    )
    verdicts: dict[str, Verdict] = {}
    for uid, v in first.items():
        d = dups.get(uid)
        if d is not None:
            v = replace(v, reasons=tuple(filters.ordered([*v.reasons, d.reason])), duplicate=d)
        res = results.get(uid)
        if v.kept and (res is None or res.output is None):
            raise RuntimeError(f"kept clip {v.item.clip_id} has no staged output")  # a bug
        verdicts[uid] = v
    if scores is not None:
        verdicts = _by_model(verdicts, scores, recipe)
    return {uid: v if v.kept else replace(v, transform=None) for uid, v in verdicts.items()}


def _by_model(
    verdicts: Mapping[str, Verdict], scores: Mapping[str, ModelScore], recipe: ShardRecipe
) -> dict[str, Verdict]:
    """``caption_mismatch`` from each clip's scores; then, among the clips still kept,
    ``duplicate_semantic`` for those past ``max_per_semantic_cluster`` in their group."""
    out: dict[str, Verdict] = {}
    for uid, v in verdicts.items():
        s = scores_for(scores, v.item.clip_id)
        extra = filters.model_reasons(
            caption_agreement=s.caption_agreement,
            caption_cosine=s.caption_cosine,
            cfg=recipe.filters,
        )
        out[uid] = replace(v, reasons=tuple(filters.ordered([*v.reasons, *extra]))) if extra else v
    kept = [(v.item.clip_id, scores_for(scores, v.item.clip_id)) for v in out.values() if v.kept]
    over = semantic_excess(kept, recipe.filters.max_per_semantic_cluster)
    for uid, v in out.items():
        if v.kept and v.item.clip_id in over:
            dup = dedup.Duplicate("duplicate_semantic", over[v.item.clip_id], None)
            out[uid] = replace(v, reasons=("duplicate_semantic",), duplicate=dup)
    return out


def place(
    items: Sequence[InputItem],
    verdicts: Mapping[str, Verdict],
    results: Mapping[str, ClipResult],
    recipe: ShardRecipe,
) -> tuple[dict[str, Verdict], list[writer.ShardPlan]]:
    """Kept clips → split by a stable hash of the clip id → sorted by clip id → shard plans.

    One numbering for the whole dir (train first, then val), so keys identify samples alone.
    Returns the verdicts with the placements of kept clips filled in, and the plans.
    """
    by_split: dict[str, list[InputItem]] = {s: [] for s in SPLITS}
    for it in items:
        if verdicts[it.uid].kept:
            by_split[contract.split_of(it.clip_id, recipe.output.val_fraction)].append(it)
    placed = dict(verdicts)
    plans: list[writer.ShardPlan] = []
    for split in SPLITS:
        ordered = sorted(by_split[split], key=lambda i: (i.clip_id, i.uid))
        samples = [_sample(verdicts[it.uid], results[it.uid]) for it in ordered]
        split_plans = writer.plan_shards(
            samples,
            split,
            recipe.media_kind,
            recipe.output.max_samples,
            recipe.output.max_bytes,
            start=len(plans),
        )
        uids = iter(it.uid for it in ordered)
        for plan in split_plans:
            for i in range(len(plan.samples)):
                uid = next(uids)
                placed[uid] = replace(
                    placed[uid], placement=Placement(plan.key(i), plan.name, split)
                )
        plans += split_plans
    return placed, plans


def _sample(v: Verdict, res: ClipResult) -> writer.Sample:
    assert res.output is not None  # decide() checked every kept clip
    return tar_sample(ShardSample(v, res.output))


def funnel(verdicts: Iterable[Verdict]) -> list[tuple[str, int]]:
    """(first reason, inputs it removed), in the order of ``contract.VERDICT_REASONS``."""
    first = Counter(v.reason for v in verdicts if v.reason)
    return [(r, first[r]) for r in contract.VERDICT_REASONS if first.get(r)]
