"""What the terminal shows: rich progress bars and the rich log handler (CLI only).

Takes the stderr console of :mod:`webvid.cli.util`; produces a :class:`RichProgress` (one bar per
task of the :class:`webvid.log.Progress` protocol, its live fields after the bar) for a
terminal, a :class:`PlainProgress` (one plain line per task every ``interval_s``: done/total,
elapsed, rate, ETA and the fields) for logs, CI and ``nohup``, and installs the log handler
(:func:`setup_logging`). ``rich.progress`` and ``rich.logging`` are imported only when used, so
a ``--quiet`` run does not pay for them. In both displays the first update of a task is where
it starts (a resumed run's steps already done), not a burst of work: rate and ETA count what
this run does.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
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
        from rich.table import Column

        # a narrow terminal wraps the fields, never the task's name nor its count and times
        self._progress = _RichProgress(
            TextColumn(
                "[bold]{task.description:<10}", table_column=Column(no_wrap=True, min_width=10)
            ),
            BarColumn(bar_width=20),
            MofNCompleteColumn(table_column=Column(no_wrap=True)),
            TimeElapsedColumn(table_column=Column(no_wrap=True)),
            TimeRemainingColumn(table_column=Column(no_wrap=True)),
            TextColumn("{task.fields[info]}", table_column=Column(ratio=1)),
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
        if task not in self._tasks:  # the first advance is where the task starts (a resume)
            self._tasks[task] = self._progress.add_task(
                task, total=total, completed=advance, info=""
            )
            self._info[task] = {}
            advance = 0
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


class PlainProgress:
    """Progress for a stderr that is not a terminal: a plain line per task every
    ``interval_s`` seconds (0: only the last line), and each task's last line at the end.

    ``train  120/700 17%  elapsed 0:01:02  1.9/s  eta 0:05:01  stage=4-frame  loss=...``
    """

    def __init__(
        self,
        console: Any,
        *,
        interval_s: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._console, self._interval, self._clock = console, interval_s, clock
        self._tasks: dict[str, dict[str, Any]] = {}

    def __enter__(self) -> PlainProgress:
        return self

    def __exit__(self, *exc: Any) -> None:
        for task in self._tasks:
            self._emit(task, self._clock())

    def update(
        self, task: str, *, advance: float = 0, total: float | None = None, **fields: Any
    ) -> None:
        now = self._clock()
        t = self._tasks.get(task)
        if t is None:  # the first advance is where the task starts (a resume)
            t = self._tasks[task] = {
                "done": advance,
                "start_done": advance,
                "start": now,
                "emitted": now,
                "total": None,
                "fields": {},
            }
        else:
            t["done"] += advance
        if total is not None:
            t["total"] = total
        t["fields"].update(fields)
        if self._interval > 0 and now - t["emitted"] >= self._interval:
            self._emit(task, now)

    def message(self, text: str) -> None:
        self._console.print(text, markup=False, highlight=False, soft_wrap=True)

    def line(self, task: str, now: float) -> str:
        """The task's progress as one line of plain text."""
        t = self._tasks[task]
        done, total = t["done"], t["total"]
        elapsed = now - t["start"]
        parts = [f"{task:<10}", f"{_fmt(done)}/{_fmt(total)}" if total else _fmt(done)]
        if total:
            parts.append(f"{done / total:.0%}")
        parts.append(f"elapsed {_clock_time(elapsed)}")
        rate = (done - t["start_done"]) / elapsed if elapsed > 0 else 0.0
        if rate > 0:
            parts.append(f"{rate:.3g}/s")
            if total and total > done:
                parts.append(f"eta {_clock_time((total - done) / rate)}")
        parts += [f"{k}={_fmt(v)}" for k, v in t["fields"].items()]
        return "  ".join(parts)

    def _emit(self, task: str, now: float) -> None:
        self._tasks[task]["emitted"] = now
        self.message(self.line(task, now))


def _clock_time(seconds: float) -> str:
    s = int(round(seconds))
    return f"{s // 3600}:{s // 60 % 60:02d}:{s % 60:02d}"


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
