"""The device a run trains on: resolving a ``--device`` name, describing it, and its peak memory."""

from __future__ import annotations

import platform
import re
import resource
from pathlib import Path

import torch

from resdyn.errors import ConfigError

VALID = "auto, cpu, cuda, cuda:N, mps"


def resolve_device(name: str) -> torch.device:
    """"auto" means CUDA when there is a GPU, else the CPU; a device this machine lacks is a ConfigError."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise ConfigError(f"unknown device {name!r}; valid: {VALID}") from None
    if device.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0:
            raise ConfigError(f"device {name!r} was asked for but this machine has no CUDA GPU; use --device cpu")
        if device.index is not None and device.index >= count:
            raise ConfigError(f"device {name!r} was asked for but this machine has {count} CUDA GPU(s), "
                              f"cuda:0 to cuda:{count - 1}")
    elif device.type == "mps":
        if not torch.backends.mps.is_available():
            raise ConfigError(f"device {name!r} (Apple GPU) is not available on this machine; use --device cpu")
    elif device.type != "cpu":
        raise ConfigError(f"device {name!r} is not supported; valid: {VALID}")
    return device


def describe_device(device: torch.device) -> str:
    """What the device is, for the summary: the GPU's name, or the CPU and its thread count."""
    if device.type == "cuda":
        return f"{device} ({torch.cuda.get_device_name(device)})"
    if device.type == "mps":
        return "mps (Apple GPU)"
    return f"cpu ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads)"


# Linux keeps a process's peak resident set (VmHWM) and lets the process reset it (proc(5), clear_refs "5").
PROC_STATUS = Path("/proc/self/status")
PROC_CLEAR_REFS = Path("/proc/self/clear_refs")


def reset_peak_memory(device: torch.device) -> bool:
    """Start measuring peak memory afresh, so that it is one training's own: CUDA's allocator peak, or on Linux
    the process's peak resident memory. False where it cannot be reset (then the CPU figure is the process's peak
    over its whole life, which in a process that trained before is not this training's)."""
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
        return True
    try:
        # Linux derives the process's ru_maxrss from the same high-water mark, so it too restarts here.
        PROC_CLEAR_REFS.write_text("5")
        return _vm_hwm() is not None
    except OSError:
        return False


def _vm_hwm() -> int | None:
    match = re.search(r"^VmHWM:\s+(\d+) kB", PROC_STATUS.read_text(), re.M) if PROC_STATUS.exists() else None
    return int(match.group(1)) * 1024 if match else None


def peak_memory_bytes(device: torch.device, since_reset: bool = False) -> tuple[int, str]:
    """Peak memory and what it measures: CUDA's allocator peak on a GPU; on the CPU, after
    :func:`reset_peak_memory` succeeded, the peak resident memory since (``peak_rss``), else the process's max RSS
    over its life (``process_max_rss``)."""
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device), "cuda_max_allocated"
    if since_reset:
        hwm = _vm_hwm()
        if hwm is not None:
            return hwm, "peak_rss"
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024, "process_max_rss"
