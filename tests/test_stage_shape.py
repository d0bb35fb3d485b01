"""The three stages share one shape: ``recipe.load`` → ``<Stage>Recipe``, and
``run(recipe, inputs, out, *, progress, runner) -> <Stage>Summary`` in the stage's ``run`` module.
"""

from __future__ import annotations

import importlib
import inspect

import pytest

STAGES = [("crawl", "Crawl"), ("shards", "Shard"), ("train", "Train")]


@pytest.mark.parametrize(("package", "stage"), STAGES)
def test_recipe_module(package, stage):
    recipe = importlib.import_module(f"webvid.{package}.recipe")
    assert inspect.isclass(getattr(recipe, f"{stage}Recipe"))
    params = list(inspect.signature(recipe.load).parameters.values())
    assert [p.name for p in params[:2]] == ["path", "overrides"]
    assert params[0].default is None and tuple(params[1].default) == ()
    assert inspect.signature(recipe.load).return_annotation == f"{stage}Recipe"


@pytest.mark.parametrize(("package", "stage"), STAGES)
def test_run_signature(package, stage):
    run = importlib.import_module(f"webvid.{package}.run")
    sig = inspect.signature(run.run)
    params = list(sig.parameters.values())
    assert [p.name for p in params[:3]] == ["recipe", "inputs", "out"]
    assert all(p.kind is p.POSITIONAL_OR_KEYWORD for p in params[:3])
    kw = {p.name: p for p in params[3:]}
    for name in ("progress", "runner"):
        assert kw[name].kind is inspect.Parameter.KEYWORD_ONLY and kw[name].default is None
    assert all(p.kind is p.KEYWORD_ONLY for p in params[3:])
    assert sig.return_annotation == f"{stage}Summary"
    assert inspect.isclass(getattr(run, f"{stage}Summary"))
    assert params[0].annotation == f"{stage}Recipe"


def test_old_names_are_aliases():
    from webvid.crawl import config as crawl_config
    from webvid.crawl import recipe as crawl_recipe
    from webvid.crawl import run as crawl_run
    from webvid.train import recipe as train_recipe

    assert crawl_config.CrawlConfig is crawl_recipe.CrawlRecipe is crawl_recipe.CrawlConfig
    assert crawl_run.Summary is crawl_run.CrawlSummary
    assert train_recipe.load_train_recipe is train_recipe.load
