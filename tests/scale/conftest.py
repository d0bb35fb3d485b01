"""Fixtures for the Ray engine tests: one local Ray cluster per test module (num_cpus=2).

Ray costs 2-4 s and ~450 MB to start, so the tests of a module share one cluster, shut down at
the module's end (so no later test forks a process with Ray's threads in it); the
tests that need it are skipped, with the reason, when Ray is not installed (``pip install
'webvid[ray]'``, which ``make setup`` does). Failure paths (a task that raises, so the driver
force-cancels running tasks and kills actors) run in a child process with a Ray of its own
(:func:`run_ray_child`): one CI run's pytest ended silently (exit 1, no summary) in such a
test, and whatever Ray does there can now end only the child. The processes the tests look
for or kill are this test process's own descendants, never another session's Ray workers.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest


@pytest.fixture(scope="module")  # shut down before other tests fork processes (a fork with
# Ray's gRPC threads in it is unsafe; a session-wide cluster would outlive this folder)
def ray_cluster() -> Iterator[Any]:
    ray = pytest.importorskip(
        "ray", reason="the Ray engine tests need ray: pip install 'webvid[ray]'"
    )
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    temp = tempfile.mkdtemp(
        prefix="wvray-", dir="/tmp"
    )  # short: Ray's socket paths have a length limit
    ray.init(num_cpus=2, include_dashboard=False, _temp_dir=temp, log_to_driver=False)
    try:
        yield ray
    finally:
        ray.shutdown()
        shutil.rmtree(temp, ignore_errors=True)


CHILD = Path(__file__).with_name("ray_child.py")


def run_ray_child(workdir: Path, case: str, timeout_s: float = 240.0, **args: Any) -> dict:
    """Run ``case`` of ``ray_child.py`` in a child process, in a session of its own, with a Ray
    cluster of its own; its ``RESULT`` JSON. The child must exit 0 within ``timeout_s``: if it
    does not, it (and only it, by its PID) is terminated, then killed, and the test fails with
    the end of its stderr; so does an exit that is not 0 (Ray ending the child)."""
    pytest.importorskip("ray", reason="the Ray engine tests need ray: pip install 'webvid[ray]'")
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}  # never another cluster
    env |= {"RAY_USAGE_STATS_ENABLED": "0", "RAY_AUTH_MODE": "disabled"}
    out, err = workdir / f"{case}.out", workdir / f"{case}.err"
    temp = tempfile.mkdtemp(prefix="wvrayc-", dir="/tmp")  # short: socket paths are limited
    spec = json.dumps({"case": case, "ray_temp_dir": temp, **args})
    with out.open("wb") as so, err.open("wb") as se:  # files: Ray's processes may hold pipes
        child = subprocess.Popen(
            [sys.executable, str(CHILD), spec],
            stdout=so,
            stderr=se,
            stdin=subprocess.DEVNULL,
            env=env,
            cwd=CHILD.parents[2],
            start_new_session=True,  # no signal to pytest's process group reaches it, or back
        )
        try:
            code = child.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            child.terminate()
            try:
                child.wait(timeout=15)
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait()
            pytest.fail(f"{case}: no exit within {timeout_s:g} s\n{_tail(err)}")
        finally:  # Ray's session files, also when Ray aborted the child before its cleanup
            shutil.rmtree(temp, ignore_errors=True)
    tail = _tail(err)
    aborted = "Ray aborted the driver (a failed RAY_CHECK in its core worker)\n"
    assert code == 0, f"{case}: the child exited {code}: {aborted * ('Check failed' in tail)}{tail}"
    lines = [x for x in out.read_text().splitlines() if x.startswith("RESULT ")]
    assert lines, f"{case}: no RESULT line\n{_tail(err)}"
    return json.loads(lines[-1].removeprefix("RESULT "))


def _tail(path: Path, n: int = 4000) -> str:
    return path.read_text(errors="replace")[-n:]


def _descends_from(pid: int, root: int) -> bool:
    """Whether ``root`` is ``pid``'s parent, grandparent, ... (from /proc/PID/stat)."""
    for _ in range(64):
        if pid == root:
            return True
        if pid <= 1:
            return False
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            return False
        pid = int(stat.rsplit(")", 1)[1].split()[1])  # after "(comm)": state, ppid
    return False


def task_pids(title: str, root: int | None = None) -> list[int]:
    """PIDs of Ray worker processes whose title says they run ``title`` (``ray::NAME``) and
    that descend from ``root`` (default: this process, whose Ray started them)."""
    root = os.getpid() if root is None else root
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmd = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if cmd.startswith(f"ray::{title}") and _descends_from(int(entry.name), root):
            pids.append(int(entry.name))
    return pids


class Killer:
    """A thread that SIGKILLs the first Ray worker of ours seen running ``title`` once
    ``ready()``."""

    def __init__(self, title: str, ready: Any = lambda: True, timeout_s: float = 60.0) -> None:
        self.title, self.ready, self.timeout_s = title, ready, timeout_s
        self.killed: int | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        end = time.monotonic() + self.timeout_s
        while not self._stop.is_set() and time.monotonic() < end:
            pids = task_pids(self.title) if self.ready() else []
            if pids:
                os.kill(pids[0], signal.SIGKILL)
                self.killed = pids[0]
                return
            time.sleep(0.02)

    def __enter__(self) -> Killer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
