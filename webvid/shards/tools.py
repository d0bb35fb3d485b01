"""Run ffprobe / ffmpeg on untrusted media with a memory ceiling and a wall-clock limit.

Takes a command line, a timeout and an address-space limit; produces a :class:`ToolRun`
(return code, stdout, stderr, and whether the run timed out or ran out of memory). Every media
tool the shard stage starts goes through :func:`run_tool`:

* the child's address space is capped with ``RLIMIT_AS`` (set between fork and exec, so the
  limit is in place before the tool reads a byte): an input that makes a demuxer inflate or
  allocate without bound fails inside the tool instead of growing until the machine swaps;
  core dumps are off (``RLIMIT_CORE`` 0), so a tool that dies leaves no multi-GB core file;
* a run past its timeout is killed by its PID (``subprocess`` does this) and reported as such.

The default ceiling, :data:`DEFAULT_MAX_MEMORY_BYTES` (2 GiB), is far above what ffmpeg needs
for one thread decoding 4K H.264/HEVC into our 256-px outputs (a few hundred MB of address
space) and far below what a hostile file could make it take. The recipe sets it
(``transform.max_tool_memory_bytes``). Where ``resource`` does not exist (Windows) the tools
run without a memory ceiling.
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable, Sequence
from dataclasses import dataclass

try:
    import resource
except ImportError:  # pragma: no cover - not POSIX
    resource = None  # type: ignore[assignment]

DEFAULT_MAX_MEMORY_BYTES = 2 * 1024**3
#: ffprobe's wall-clock limit: it reads headers and a few packets, never a whole clip.
DEFAULT_PROBE_TIMEOUT_S = 30.0
#: What a tool says when an allocation fails under the ceiling.
_OOM_MARKS = (
    "Cannot allocate memory",
    "Out of memory",
    "out of memory",
    "std::bad_alloc",
    "failed to map segment",  # the loader: too little address space to load the libraries
)


@dataclass(frozen=True)
class ToolRun:
    returncode: int
    stdout: bytes
    stderr: str
    timed_out: bool
    out_of_memory: bool  # the tool failed and said an allocation failed

    @property
    def ok(self) -> bool:
        return self.returncode == 0 and not self.timed_out


def _limiter(max_memory_bytes: int | None) -> Callable[[], None] | None:
    """The function that runs in the child between fork and exec (no imports, no locks)."""
    if resource is None:
        return None
    set_limit, as_limit, core_limit = resource.setrlimit, resource.RLIMIT_AS, resource.RLIMIT_CORE

    def limit() -> None:
        set_limit(core_limit, (0, 0))
        if max_memory_bytes is not None:
            set_limit(as_limit, (max_memory_bytes, max_memory_bytes))

    return limit


def run_tool(
    cmd: Sequence[str],
    *,
    timeout_s: float,
    max_memory_bytes: int | None = DEFAULT_MAX_MEMORY_BYTES,
) -> ToolRun:
    """Run ``cmd`` with its address space capped at ``max_memory_bytes`` (None: no cap) and
    killed after ``timeout_s`` seconds; stdout is returned whole, stderr decoded."""
    if max_memory_bytes is not None and max_memory_bytes <= 0:
        raise ValueError("max_memory_bytes must be positive")
    try:
        proc = subprocess.run(
            list(cmd),
            capture_output=True,
            timeout=timeout_s,
            check=False,
            stdin=subprocess.DEVNULL,
            preexec_fn=_limiter(max_memory_bytes),  # only setrlimit runs there (thread-safe)
        )
    except subprocess.TimeoutExpired as exc:
        err = (exc.stderr or b"").decode("utf-8", "replace")
        return ToolRun(-9, b"", f"{err}\n{cmd[0]} timed out after {timeout_s:g}s", True, False)
    err = proc.stderr.decode("utf-8", "replace")
    oom = proc.returncode != 0 and any(mark in err for mark in _OOM_MARKS)
    return ToolRun(proc.returncode, proc.stdout, err, False, oom)


def memory_detail(tool: str, max_memory_bytes: int | None) -> str:
    """The verdict detail of a tool that ran out of its address space."""
    cap = "no" if max_memory_bytes is None else f"the {max_memory_bytes / 1024**2:.0f} MiB"
    return f"{tool}: an allocation failed under {cap} address-space limit"
