"""A Ray failure path run in a child process, so that whatever Ray does while a run fails
(force-cancelling tasks, killing actors, a driver that loses its cluster calling ``_exit``)
can only end this process, never the pytest process that started it.

Run as ``python tests/scale/ray_child.py SPEC`` (by ``conftest.run_ray_child``): SPEC is a
JSON object naming the case and its arguments. The child starts a Ray cluster of its own
(``num_cpus=2``, in the temp folder SPEC names, which the parent removes even when the child
is aborted; never another's cluster: ``RAY_ADDRESS`` is not passed on),
runs the case, shuts Ray down, and prints one line ``RESULT {json}`` on stdout: what each
call returned or raised (exception class as ``module.Name`` and its message). It exits 0 when
the case ran to its end, whatever the calls raised; anything else is a crash.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

RESULT = "RESULT "


def outcome(call: Callable[[], Any]) -> dict[str, Any]:
    """``{"value": repr}`` of what ``call`` returned, or ``{"error": module.Name, "message"}``."""
    try:
        return {"value": repr(call())}
    except Exception as exc:
        return {"error": f"{type(exc).__module__}.{type(exc).__name__}", "message": str(exc)}


def crawl_task_error(source: str, local_out: str, ray_out: str) -> dict[str, Any]:
    """The local crawl and the Ray crawl (2 tasks) of the same bad table."""
    from crawl_setup import config  # this script's folder is sys.path[0]

    from webvid.crawl.run import run as local_run
    from webvid.scale.crawl_engine import run_crawl

    return {
        "local": outcome(lambda: local_run(config(Path(source), Path(local_out)))),
        "ray": outcome(lambda: run_crawl(config(Path(source), Path(ray_out)), tasks=2)),
    }


def executor_error() -> dict[str, Any]:
    """A RayExecutor given one good and one failing call."""
    from webvid.scale.executor import RayExecutor

    pool = RayExecutor()
    ok, bad = pool.submit(int, "42"), pool.submit(int, "forty-two")
    result = {"ok": outcome(lambda: ok.result(timeout=60))}
    result["bad"] = outcome(lambda: bad.result(timeout=60))
    exc = bad.exception(timeout=60)
    result["bad_exception_class"] = f"{type(exc).__module__}.{type(exc).__name__}"
    pool.shutdown()
    return result


CASES: dict[str, Callable[..., dict[str, Any]]] = {
    "crawl_task_error": crawl_task_error,
    "executor_error": executor_error,
}


def main(spec: dict[str, Any]) -> None:
    import ray

    case = CASES[spec.pop("case")]
    temp = spec.pop("ray_temp_dir")
    ray.init(num_cpus=2, include_dashboard=False, _temp_dir=temp, log_to_driver=False)
    try:
        result = case(**spec)
    finally:
        ray.shutdown()
    print(RESULT + json.dumps(result), flush=True)


if __name__ == "__main__":
    main(json.loads(sys.argv[1]))
