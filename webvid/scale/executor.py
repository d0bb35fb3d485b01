"""A ``concurrent.futures.Executor`` whose work runs as Ray tasks.

Takes a module-level function and its arguments (as ``ProcessPoolExecutor.submit`` does) and an
optional per-process initializer; produces ordinary ``concurrent.futures.Future`` objects, so
code written for a process pool (``submit``, ``as_completed``, ``shutdown``) runs on a Ray
cluster unchanged. A task whose worker process dies (killed, out of memory, node lost) is run
again by Ray up to ``max_retries`` times; an exception raised by the function itself is not
retried (it is the function's answer) and comes back from ``Future.result()`` as itself, not
wrapped in Ray's error type, as from a process pool.

The initializer runs before every task in the worker process: Ray reuses worker processes
across runs, so a per-process flag could carry one run's settings into the next.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import Executor, Future
from typing import Any

from webvid.scale.cluster import import_ray

_REMOTE: Any = None
_LOCK = threading.Lock()


def webvid_task(
    init: Callable[..., None] | None,
    initargs: tuple[Any, ...],
    fn: Callable[..., Any],
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
) -> Any:
    """What one Ray task runs (its process title is ``ray::webvid_task`` while it runs)."""
    if init is not None:
        ray = import_ray()  # the initializer's arguments travel once, as object refs
        init(*(ray.get(a) if isinstance(a, ray.ObjectRef) else a for a in initargs))
    return fn(*args, **kwargs)


def _remote() -> Any:
    global _REMOTE
    with _LOCK:
        if _REMOTE is None:
            _REMOTE = import_ray().remote(webvid_task)
        return _REMOTE


class RayExecutor(Executor):
    """``submit`` → a Ray task; ``shutdown(cancel_futures=True)`` cancels what has not finished."""

    def __init__(
        self,
        initializer: Callable[..., None] | None = None,
        initargs: tuple[Any, ...] = (),
        *,
        max_retries: int = 3,
        num_cpus: float = 1.0,
    ) -> None:
        ray = import_ray()
        self._ray = ray
        self._init = initializer
        self._initargs = tuple(ray.put(a) for a in initargs)  # shipped once, not per task
        self._fn = _remote().options(
            max_retries=max_retries, retry_exceptions=False, num_cpus=num_cpus
        )
        self._refs: dict[Any, Future[Any]] = {}
        self._closed = False

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:  # type: ignore[override]
        if self._closed:
            raise RuntimeError("cannot submit after shutdown")
        ref = self._fn.remote(self._init, self._initargs, fn, args, kwargs)
        out: Future[Any] = Future()
        self._refs[ref] = out

        def settle(f: Future[Any]) -> None:
            self._refs.pop(ref, None)
            exc = f.exception() if not f.cancelled() else None
            if f.cancelled():
                out.cancel()
            elif exc is None:
                out.set_result(f.result())
            else:  # the function's own exception, as a process pool gives it (not Ray's wrapper)
                out.set_exception(getattr(exc, "cause", None) or exc)

        ref.future().add_done_callback(settle)
        return out

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        self._closed = True
        pending = list(self._refs)
        if cancel_futures:
            for ref in pending:
                self._ray.cancel(ref, force=False)
        elif wait and pending:
            self._ray.wait(pending, num_returns=len(pending))
