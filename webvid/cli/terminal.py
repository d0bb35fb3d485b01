"""What the terminal shows: rich progress bars and the rich log handler (CLI only).

Takes the stderr console of :mod:`webvid.cli.util`; produces a :class:`RichProgress` (one bar per
task of the :class:`webvid.log.Progress` protocol, its live fields after the bar) and installs
the log handler (:func:`setup_logging`). ``rich.progress`` and ``rich.logging`` are imported
only when used, so a ``--quiet`` run does not pay for them.
"""

from __future__ import annotations

import logging
import time
from typing import Any

LOG_FORMAT = "%(message)s"


class RichProgress:
    """A rich progress display: one bar per task, with its live fields after the bar.

    Use as a context manager. Updates are rate-limited so a hot loop costs little.
    """

    def __init__(
        self, console: Any = None, *, transient: bool = False, min_interval_s: float = 0.1
    ) -> None:
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )
        from rich.progress import (
            Progress as _RichProgress,
        )

        self._progress = _RichProgress(
            TextColumn("[bold]{task.description:<10}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            TextColumn("{task.fields[info]}"),
            console=console,
            transient=transient,
        )
        self._tasks: dict[str, Any] = {}
        self._info: dict[str, dict[str, Any]] = {}
        self._last: dict[str, float] = {}
        self._min_interval = min_interval_s

    def __enter__(self) -> RichProgress:
        self._progress.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        # Show the final figures of every task, even those updated within the rate limit.
        for task, tid in self._tasks.items():
            info = "  ".join(f"{k}={_fmt(v)}" for k, v in self._info[task].items())
            self._progress.update(tid, info=info)
        self._progress.__exit__(*exc)

    def update(
        self, task: str, *, advance: float = 0, total: float | None = None, **fields: Any
    ) -> None:
        if task not in self._tasks:
            self._tasks[task] = self._progress.add_task(task, total=total, info="")
            self._info[task] = {}
        tid = self._tasks[task]
        self._info[task].update(fields)
        now = time.monotonic()
        kwargs: dict[str, Any] = {"advance": advance}
        if total is not None:
            kwargs["total"] = total
        if fields and now - self._last.get(task, 0.0) >= self._min_interval:
            self._last[task] = now
            kwargs["info"] = "  ".join(f"{k}={_fmt(v)}" for k, v in self._info[task].items())
        self._progress.update(tid, **kwargs)

    def message(self, text: str) -> None:
        self._progress.console.print(text)


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)


def setup_logging(verbosity: int = 0, *, quiet: bool = False, console: Any = None) -> None:
    """Install the rich logging handler on the root logger (CLI only).

    ``verbosity`` 0 → WARNING for libraries and INFO for webvid, 1 → DEBUG for webvid,
    2+ → DEBUG everywhere; ``quiet`` → errors only.
    """
    from rich.logging import RichHandler

    root = logging.getLogger()
    for h in list(root.handlers):
        if getattr(h, "_webvid", False):
            root.removeHandler(h)
    handler = RichHandler(
        console=console, show_path=verbosity >= 2, rich_tracebacks=False, markup=False
    )
    handler._webvid = True  # type: ignore[attr-defined]
    handler.setFormatter(logging.Formatter(LOG_FORMAT))
    root.addHandler(handler)
    if quiet:
        root.setLevel(logging.ERROR)
        logging.getLogger("webvid").setLevel(logging.ERROR)
        return
    root.setLevel(logging.DEBUG if verbosity >= 2 else logging.WARNING)
    logging.getLogger("webvid").setLevel(logging.DEBUG if verbosity >= 1 else logging.INFO)
