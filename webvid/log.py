"""The tiny progress protocol every stage reports through (the log set-up is the CLI's).

Library code logs with ``logging.getLogger(__name__)`` and reports progress through a
:class:`Progress` object (no-op by default), so tests need no terminal. Only the CLI installs
the rich log handler and a rich progress display (both in :mod:`webvid.cli.terminal`).

Protocol: ``progress.update(task, advance=1, total=None, **fields)`` — ``task`` is a short
name ("download", "probe", "train"); ``fields`` are live figures to show (``failed=3``,
``loss=0.41``). ``progress.message(text)`` prints a line above the bars.
"""

from __future__ import annotations

from typing import Any, Protocol


class Progress(Protocol):
    def update(
        self, task: str, *, advance: float = 0, total: float | None = None, **fields: Any
    ) -> None: ...

    def message(self, text: str) -> None: ...


class NullProgress:
    """The default: records nothing, costs nothing."""

    def update(
        self, task: str, *, advance: float = 0, total: float | None = None, **fields: Any
    ) -> None:
        return None

    def message(self, text: str) -> None:
        return None


class RecordingProgress:
    """Keeps totals per task; handy in tests and for summaries."""

    def __init__(self) -> None:
        self.completed: dict[str, float] = {}
        self.totals: dict[str, float | None] = {}
        self.fields: dict[str, dict[str, Any]] = {}
        self.messages: list[str] = []

    def update(
        self, task: str, *, advance: float = 0, total: float | None = None, **fields: Any
    ) -> None:
        self.completed[task] = self.completed.get(task, 0) + advance
        if total is not None:
            self.totals[task] = total
        self.fields.setdefault(task, {}).update(fields)

    def message(self, text: str) -> None:
        self.messages.append(text)
