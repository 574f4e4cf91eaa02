"""XLA_FLAGS: at least one CPU device per chain, never fewer than already asked for."""

from __future__ import annotations

import os

import pytest

from mixwise.mmm.devices import request_host_devices

FLAG = "--xla_force_host_platform_device_count"


def test_device_count_only_goes_up_and_other_flags_stay(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("XLA_FLAGS", raising=False)
    request_host_devices(4)
    assert os.environ["XLA_FLAGS"] == f"{FLAG}=4"
    request_host_devices(2)  # a 2-chain fit keeps the server's 4
    assert os.environ["XLA_FLAGS"] == f"{FLAG}=4"
    monkeypatch.setenv("XLA_FLAGS", f"--xla_cpu_fast_math=false {FLAG}=2")
    request_host_devices(8)
    assert os.environ["XLA_FLAGS"].split() == [f"{FLAG}=8", "--xla_cpu_fast_math=false"]
