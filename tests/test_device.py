"""Peak memory is a training's own: reset at its start (CUDA's allocator peak, or Linux's peak RSS). Precision
"auto" is bf16 and channels_last where the device computes bf16 natively, fp32 elsewhere."""

import subprocess
import sys
import textwrap

import pytest
import torch

from resdyn import device as device_module
from resdyn.device import choose_speed, configure_backends, cpu_bf16_native

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
    mark = reset_peak_memory(cpu)
    assert mark.reset and not mark.reused
    after, kind = peak_memory_bytes(cpu, mark)
    assert kind == "peak_rss"
    assert after < before - 192 * 2**20, (after, before)
    held = torch.ones(128 * 2**20 // 4)  # touched and held: the resident set can only grow
    grown, _ = peak_memory_bytes(cpu, mark)
    resident = int(re.search(r"VmRSS:\\s+(\\d+) kB", Path("/proc/self/status").read_text()).group(1)) * 1024
    assert grown >= max(after, resident), (grown, after, resident)
    again = reset_peak_memory(cpu)  # a second training in this process: its peak holds what the first left
    assert again.reused and peak_memory_bytes(cpu, again)[1] == "peak_rss_reused"
    print("ok")
""")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the peak RSS reset is Linux's /proc/self/clear_refs")
def test_the_cpu_peak_after_a_reset_excludes_what_the_process_did_before():
    probe = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True)
    assert probe.returncode == 0 and probe.stdout.strip() == "ok", probe.stderr[-2000:]


# -- precision and memory layout ----------------------------------------------------------------------------------
CPU = torch.device("cpu")


def test_auto_on_a_cpu_without_native_bf16_is_fp32_and_says_why(monkeypatch):
    why = "bf16 not native on this CPU: no avx512_bf16"
    monkeypatch.setattr(device_module, "cpu_bf16_native", lambda: (False, why))
    speed = choose_speed(CPU, "auto", None)
    assert (speed.bf16, speed.channels_last) == (False, False)
    assert speed.describe() == "fp32 (auto: bf16 not native on this CPU: no avx512_bf16)"


def test_auto_on_a_cpu_with_native_bf16_is_bf16_and_channels_last(monkeypatch):
    monkeypatch.setattr(device_module, "cpu_bf16_native", lambda: (True, "bf16 native on this CPU: avx512_bf16"))
    speed = choose_speed(CPU, "auto", None)
    assert (speed.bf16, speed.channels_last) == (True, True)
    assert speed.describe() == "bf16, channels_last (auto: bf16 native on this CPU: avx512_bf16)"
    # What is configured explicitly wins over the detection.
    assert choose_speed(CPU, "fp32", None) == device_module.Speed(False, False, "as configured")
    assert choose_speed(CPU, "auto", False).channels_last is False


def test_auto_is_bf16_and_channels_last_on_cuda_and_fp32_on_an_apple_gpu(monkeypatch):
    monkeypatch.setattr(device_module, "cpu_bf16_native", lambda: pytest.fail("a GPU needs no CPU detection"))
    assert choose_speed(torch.device("cuda"), "auto", None) == device_module.Speed(True, True, "auto: CUDA")
    assert choose_speed(torch.device("mps"), "auto", None).bf16 is False


@pytest.mark.parametrize("avx512_bf16, amx, native", [(True, False, True), (False, True, True), (False, False, False)])
def test_an_x86_cpu_computes_bf16_natively_only_with_avx512_bf16_or_amx(monkeypatch, avx512_bf16, amx, native):
    """oneDNN's own check is true on any AVX-512 CPU, where it emulates bf16 (slower than fp32)."""
    monkeypatch.setattr(torch.ops.mkldnn, "_is_mkldnn_bf16_supported", lambda: True, raising=False)
    monkeypatch.setattr(device_module.platform, "machine", lambda: "x86_64")
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: avx512_bf16)
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: amx)
    got, why = cpu_bf16_native()
    assert got is native and ("not native" in why) is not native


def test_without_onednn_bf16_there_is_no_native_bf16(monkeypatch):
    monkeypatch.setattr(torch.ops.mkldnn, "_is_mkldnn_bf16_supported", lambda: False, raising=False)
    assert cpu_bf16_native() == (False, "bf16 not supported by oneDNN on this CPU")


@pytest.mark.parametrize("name, local_rank, index", [("cuda", 0, 0), ("cuda", 1, 1), ("cuda:3", 1, 3)])
def test_configure_backends_gives_cuda_an_index_that_set_device_accepts(monkeypatch, name, local_rank, index):
    """torch.cuda.set_device(torch.device("cuda")) raises ("Expected a torch.device with a specified index");
    every GPU training failed so before this (found on the first GPU run, an H200 with torch 2.11)."""
    chosen = []
    monkeypatch.setattr(torch.cuda, "set_device",
                        lambda d: chosen.append(torch._utils._get_device_index(d, optional=False)))
    before = torch.backends.cudnn.benchmark, torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
    torch.backends.cudnn.benchmark = torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False
    try:
        device = configure_backends(torch.device(name), local_rank)
        assert device == torch.device("cuda", index) and chosen == [index]
        assert torch.backends.cudnn.benchmark and torch.backends.cudnn.allow_tf32
        assert torch.backends.cuda.matmul.allow_tf32
    finally:
        torch.backends.cudnn.benchmark, torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = before


def test_configure_backends_leaves_the_cpu_alone():
    assert configure_backends(torch.device("cpu"), 1) == torch.device("cpu")
