"""A text model folder that is not there: one error naming the folder, what it must hold, how to
get it and where the docs say so — not the hub library's "Repo id must be in the form ..."."""

from __future__ import annotations

from pathlib import Path

import pytest

from webvid.errors import InputError
from webvid.model.text import build_text_model, load_tokenizer, text_config

ROOT = Path(__file__).resolve().parents[2]


def _says_what_to_do(message: str, folder: Path) -> None:
    def flat(text: str) -> str:  # the terminal may wrap a long path anywhere
        return "".join(text.split())

    text = flat(message)
    assert flat(f"text model folder {folder} does not exist") in text
    assert flat(f"huggingface-cli download distilbert-base-uncased --local-dir {folder}") in text
    assert flat("docs/model.md, 'The weights the paper used, and where to get them'") in text
    assert "Repoid" not in text


@pytest.mark.parametrize(
    "load",
    [
        lambda ref: build_text_model(ref, pretrained=True),
        load_tokenizer,
        lambda ref: text_config(ref.replace("distilbert-base-uncased", "my-bert")),
    ],
)
def test_a_missing_folder_says_what_it_must_hold(load, tmp_path: Path) -> None:
    folder = tmp_path / "models" / "distilbert-base-uncased"
    with pytest.raises(InputError) as err:
        load(str(folder))
    if "my-bert" in str(err.value):  # a non-builtin name: the config needs the folder too
        assert "text model folder" in str(err.value) and "Repo id" not in str(err.value)
        return
    _says_what_to_do(str(err.value), folder)


def test_the_paper_recipe_without_its_text_model(run_cli, tmp_path: Path) -> None:
    folder = tmp_path / "distilbert-base-uncased"
    recipe = ROOT / "train" / "frozen-webvid2m-cc3m.toml"
    code, _, err = run_cli(
        ["train", "--recipe", str(recipe), "-o", str(tmp_path / "run")]
        + ["--set", f'model.text_model="{folder}"']
    )
    assert code == 2
    _says_what_to_do(err, folder)


def test_a_hub_name_is_still_looked_up_in_the_cache_only() -> None:
    with pytest.raises(InputError, match="neither a local directory nor in the local cache"):
        text_config("some-org/not-a-cached-model")
