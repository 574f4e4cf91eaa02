"""How many XLA CPU devices JAX starts with: one per chain, so NUTS chains run in parallel.

``numpyro.set_host_device_count`` only edits ``XLA_FLAGS``, and only before JAX's first
computation in the process; this does the same without importing JAX or NumPyro (a web server
asks at start-up, before anything can start JAX), and never lowers a count already asked for
(a server asks for 4, and a 2-chain fit must not take two of them away).
"""

from __future__ import annotations

import os
import re

_FLAG = "--xla_force_host_platform_device_count"


def request_host_devices(n: int) -> None:
    """Ask XLA for at least ``n`` CPU devices (no effect once JAX has started)."""
    flags = os.environ.get("XLA_FLAGS", "")
    asked = re.search(rf"{_FLAG}=(\d+)", flags)
    if asked and int(asked.group(1)) >= n:
        return
    rest = re.sub(rf"{_FLAG}=\S*", "", flags).split()
    os.environ["XLA_FLAGS"] = " ".join([f"{_FLAG}={n}", *rest])
