"""Process measurements shared by the benchmarks (each step runs in a child process)."""

from __future__ import annotations

from pathlib import Path


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
