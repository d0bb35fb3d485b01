"""Shared pytest set-up: the demo stock site fixtures (``demo_site``, ``demo_site_fresh``) and
``run_cli``, which runs the ``webvid`` command in-process and returns (exit code, stdout, stderr)."""

from __future__ import annotations

from collections.abc import Callable

import pytest

pytest_plugins = ["webvid.demo.pytest_plugin"]


@pytest.fixture
def run_cli(capsys: pytest.CaptureFixture[str]) -> Callable[[list[str]], tuple[int, str, str]]:
    from webvid.cli import main

    def run(args: list[str]) -> tuple[int, str, str]:
        try:
            main(args)
            code = 0
        except SystemExit as exc:
            code = int(exc.code or 0)
        out, err = capsys.readouterr()
        return code, out, err

    return run
