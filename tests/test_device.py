"""Peak memory is a training's own: reset at its start (CUDA's allocator peak, or Linux's peak RSS)."""

import re
import sys
from pathlib import Path

import pytest
import torch

from resdyn.device import peak_memory_bytes, reset_peak_memory


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the peak RSS reset is Linux's /proc/self/clear_refs")
def test_the_cpu_peak_after_a_reset_excludes_what_the_process_did_before():
    cpu = torch.device("cpu")
    big = torch.ones(96 * 2**20 // 4)  # 96 MiB, touched
    before, kind = peak_memory_bytes(cpu)
    assert kind == "process_max_rss" and before > 96 * 2**20
    del big
    assert reset_peak_memory(cpu)
    after, kind = peak_memory_bytes(cpu, since_reset=True)
    assert kind == "peak_rss"
    assert after < before - 64 * 2**20
    held = torch.ones(128 * 2**20 // 4)  # noqa: F841  (touched and held: the resident set can only grow)
    grown, _ = peak_memory_bytes(cpu, since_reset=True)
    resident = int(re.search(r"VmRSS:\s+(\d+) kB", Path("/proc/self/status").read_text()).group(1)) * 1024
    # The peak since the reset follows what came after it (whether the allocator took fresh pages or reused ones).
    assert grown >= max(after, resident)
