"""Peak memory is a training's own: reset at its start (CUDA's allocator peak, or Linux's peak RSS)."""

import subprocess
import sys
import textwrap

import pytest

# Run in a fresh interpreter: inside the test process the allocator may keep freed pages resident, which would
# say nothing about the reset.
PROBE = textwrap.dedent("""
    import re
    from pathlib import Path
    import torch
    from resdyn.device import peak_memory_bytes, reset_peak_memory

    cpu = torch.device("cpu")
    big = torch.ones(256 * 2**20 // 4)  # 256 MiB, touched
    before, kind = peak_memory_bytes(cpu)
    assert kind == "process_max_rss" and before > 256 * 2**20, (kind, before)
    del big
    assert reset_peak_memory(cpu)
    after, kind = peak_memory_bytes(cpu, since_reset=True)
    assert kind == "peak_rss"
    assert after < before - 192 * 2**20, (after, before)
    held = torch.ones(128 * 2**20 // 4)  # touched and held: the resident set can only grow
    grown, _ = peak_memory_bytes(cpu, since_reset=True)
    resident = int(re.search(r"VmRSS:\\s+(\\d+) kB", Path("/proc/self/status").read_text()).group(1)) * 1024
    assert grown >= max(after, resident), (grown, after, resident)
    print("ok")
""")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the peak RSS reset is Linux's /proc/self/clear_refs")
def test_the_cpu_peak_after_a_reset_excludes_what_the_process_did_before():
    probe = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True)
    assert probe.returncode == 0 and probe.stdout.strip() == "ok", probe.stderr[-2000:]
