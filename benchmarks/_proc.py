"""Process measurements shared by the benchmarks (each step runs in a child process)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path
from typing import Any


def rss_mb(pid: int, field: str = "VmRSS") -> float:
    """A process's memory from ``/proc/<pid>/status`` in MB (``VmHWM``: its peak); 0 if gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def versions(*packages: str) -> dict[str, str]:
    """Python's and each installed package's version ("not installed" otherwise)."""
    import platform
    from importlib import metadata

    out = {"python": platform.python_version()}
    for pkg in packages:
        try:
            out[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            out[pkg] = "not installed"
    return out


def run_child(
    cmd: list[str], out: Path, timeout: float, guard_mb: float, log: Path | None = None
) -> dict[str, Any]:
    """Run ``cmd``, which writes its result as JSON to ``out``; return that result with the
    process's wall time (``process_wall``) and peak RSS in MB (``peak_mb``), or ``error``.

    The peak is the child's ``VmHWM`` sampled every 50 ms (``ru_maxrss`` from ``wait4`` would
    also count the parent's memory the child inherited at fork). A child above ``guard_mb``
    of RSS or past ``timeout`` seconds is killed. ``log``: where its output goes (the last
    lines are quoted in the error); by default the parent's stdout and stderr."""
    out.unlink(missing_ok=True)
    start = time.perf_counter()
    sink = log.open("w") if log is not None else None
    try:
        # Its own process group: a timeout kills its workers too (PyMC samples in processes).
        proc = subprocess.Popen(
            cmd,
            stdout=sink,
            stderr=subprocess.STDOUT if sink is not None else None,
            start_new_session=True,
        )
        peak, killed = 0.0, ""
        while True:
            pid, status, _ = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            rss = rss_mb(proc.pid)
            peak = max(peak, rss_mb(proc.pid, "VmHWM"))
            elapsed = time.perf_counter() - start
            if not killed and (rss > guard_mb or elapsed > timeout):
                over = rss > guard_mb
                killed = f"stopped at {rss:.0f} MB" if over else f"timeout {timeout:.0f} s"
                os.killpg(proc.pid, signal.SIGKILL)
            time.sleep(0.05)
    finally:
        if sink is not None:
            sink.close()
    code = os.waitstatus_to_exitcode(status)
    result: dict[str, Any] = {"process_wall": time.perf_counter() - start, "peak_mb": peak}
    if code == 0 and out.exists():
        result.update(json.loads(out.read_text()))
    else:
        tail = log.read_text(errors="replace").strip().splitlines()[-3:] if log else []
        result["error"] = killed or f"exit code {code}" + (": " + " | ".join(tail) if tail else "")
    return result
