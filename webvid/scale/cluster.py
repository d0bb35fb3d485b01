"""Connect to a Ray cluster, or start a local one, for one run of a stage.

Takes an optional address (``ray://…``, ``HOST:PORT`` or ``auto``; none: a local Ray on this
machine) and produces a context in which ``ray`` is initialised. A Ray the caller had already
initialised (tests, notebooks) is reused and left running; one started here is shut down at
the end. Ray's usage statistics are off and so is its dashboard.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from types import ModuleType
from typing import Any

from webvid.errors import ConfigError

ENGINES = ("local", "ray")


def import_ray() -> ModuleType:
    """``ray``, or one clear error saying how to install it."""
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    try:
        import ray
    except ImportError as exc:
        raise ConfigError(
            "--engine ray needs Ray: pip install 'webvid[ray]' (or pip install 'ray>=2.9')"
        ) from exc
    return ray


@contextlib.contextmanager
def ray_session(
    address: str | None = None, *, num_cpus: int | None = None, temp_dir: str | None = None
) -> Iterator[ModuleType]:
    """``ray`` initialised for the body: reused if already up, else connected or started."""
    ray = import_ray()
    if ray.is_initialized():
        yield ray
        return
    kwargs: dict[str, Any] = {"include_dashboard": False, "log_to_driver": True}
    if address:
        kwargs["address"] = address
    else:  # a local Ray: our machine only, no auth token written to the home folder
        os.environ.setdefault("RAY_AUTH_MODE", "disabled")
        if num_cpus is not None:
            kwargs["num_cpus"] = num_cpus
        if temp_dir is not None:
            kwargs["_temp_dir"] = temp_dir
    try:
        ray.init(**kwargs)
    except (ConnectionError, ValueError) as exc:
        raise ConfigError(
            f"cannot connect to Ray at {address or 'a new local cluster'}: {exc}"
        ) from exc
    try:
        yield ray
    finally:
        ray.shutdown()


def cluster_cpus(ray: ModuleType) -> int:
    """CPUs of the whole cluster (at least 1)."""
    return max(1, int(ray.cluster_resources().get("CPU", 1)))
