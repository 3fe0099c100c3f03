"""The device a run trains on: resolving a ``--device`` name, describing it, choosing its precision and memory
layout, and its peak memory."""

from __future__ import annotations

import platform
import re
import resource
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

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


def configure_backends(device: torch.device, local_rank: int = 0) -> torch.device:
    """Make ``device`` this process's own and set the backend flags every resdyn loop trains under; return the
    device with its index.

    On CUDA: the device gets an index (a bare "cuda" is the ``local_rank``-th GPU, which is 0 outside torchrun;
    ``torch.cuda.set_device`` refuses a device without one), becomes the current device, and cuDNN's autotuner
    and TF32 matrix products are on (as torch's ImageNet example and timm train). Elsewhere nothing changes.
    """
    if device.type != "cuda":
        return device
    if device.index is None:
        device = torch.device("cuda", local_rank)
    torch.cuda.set_device(device)
    torch.backends.cudnn.benchmark = True
    torch.backends.cuda.matmul.allow_tf32 = True
    torch.backends.cudnn.allow_tf32 = True
    return device


def describe_device(device: torch.device) -> str:
    """What the device is, for the summary: the GPU's name, or the CPU and its thread count."""
    if device.type == "cuda":
        return f"{device} ({torch.cuda.get_device_name(device)})"
    if device.type == "mps":
        return "mps (Apple GPU)"
    return f"cpu ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads)"


def cpu_bf16_native() -> tuple[bool, str]:
    """Whether this CPU computes bfloat16 in hardware, and why: AVX-512 BF16 or AMX on x86, oneDNN's bf16 check
    elsewhere (Arm's BF16 extension).

    ``torch.ops.mkldnn._is_mkldnn_bf16_supported()`` alone is not enough on x86: it is true on any AVX-512 core
    CPU (Skylake-X, Cascade Lake), where oneDNN emulates bfloat16 and runs slower than float32.
    """
    mkldnn = getattr(torch.ops.mkldnn, "_is_mkldnn_bf16_supported", None)
    if not torch.backends.mkldnn.is_available() or mkldnn is None or not mkldnn():
        return False, "bf16 not supported by oneDNN on this CPU"
    if platform.machine().lower() in ("x86_64", "amd64", "i386", "i686"):
        if torch.cpu._is_avx512_bf16_supported():
            return True, "bf16 native on this CPU: avx512_bf16"
        if torch.cpu._is_amx_tile_supported():
            return True, "bf16 native on this CPU: amx"
        return False, "bf16 not native on this CPU: no avx512_bf16 or amx, oneDNN would emulate it"
    return True, f"bf16 native on this CPU: oneDNN supports it on {platform.machine()}"


@dataclass(frozen=True)
class Speed:
    """How a run computes: bf16 autocast or float32, channels_last or contiguous, and why (for the summary)."""

    bf16: bool
    channels_last: bool
    why: str

    def describe(self) -> str:
        """The summary's ``precision``, e.g. "bf16, channels_last (auto: bf16 native on this CPU: avx512_bf16)"."""
        layout = ", channels_last" if self.channels_last else ""
        return f"{'bf16' if self.bf16 else 'fp32'}{layout} ({self.why})"


def choose_speed(device: torch.device, precision: Literal["auto", "bf16", "fp32"],
                 channels_last: bool | None) -> Speed:
    """Resolve ``train.precision`` and ``train.channels_last`` for ``device``.

    "auto" is bf16 autocast on CUDA and on CPUs that compute bf16 natively (:func:`cpu_bf16_native`), float32
    elsewhere (an Apple GPU, a CPU that would emulate bf16). ``channels_last=None`` follows bf16 on the CPU,
    where oneDNN's bf16 convolutions want NHWC (measured on a 2-core AVX-512 BF16 EPYC, ResNet-20 at batch
    128 on 28x28: 205 ms a step in fp32, 141 ms with bf16, 105-114 ms with bf16 and channels_last), and is on
    for CUDA (tensor cores want NHWC).
    """
    if precision != "auto":
        bf16, why = precision == "bf16", "as configured"
    elif device.type == "cuda":
        bf16, why = True, "auto: CUDA"
    elif device.type == "cpu":
        bf16, why = cpu_bf16_native()
        why = f"auto: {why}"
    else:
        bf16, why = False, f"auto: fp32 on {device.type}"
    if channels_last is None:
        channels_last = device.type == "cuda" or (device.type == "cpu" and bf16)
    return Speed(bf16, channels_last, why)


# Linux keeps a process's peak resident set (VmHWM) and lets the process reset it (proc(5), clear_refs "5").
PROC_STATUS = Path("/proc/self/status")
PROC_CLEAR_REFS = Path("/proc/self/clear_refs")


#: trainings this process has measured: the peak of any but the first also holds what earlier ones left behind
#: (allocator caches, Python objects), which is why ``resdyn compare`` trains each run in a process of its own
_trainings_measured = 0


@dataclass(frozen=True)
class MemoryMark:
    """Where a training's memory measurement started: whether the peak could be reset, and whether the process
    had trained before (then the peak is not the training's alone)."""

    reset: bool
    reused: bool


def reset_peak_memory(device: torch.device) -> MemoryMark:
    """Start measuring peak memory afresh, so that it is one training's own: CUDA's allocator peak, or on Linux
    the process's peak resident memory. ``reset`` is False where it cannot be reset (then the CPU figure is the
    process's peak over its whole life); ``reused`` is True when this process measured a training before."""
    global _trainings_measured
    reused = _trainings_measured > 0
    _trainings_measured += 1
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
        return MemoryMark(True, reused)
    try:
        # Linux derives the process's ru_maxrss from the same high-water mark, so it too restarts here.
        PROC_CLEAR_REFS.write_text("5")
        return MemoryMark(_vm_hwm() is not None, reused)
    except OSError:
        return MemoryMark(False, reused)


def _vm_hwm() -> int | None:
    match = re.search(r"^VmHWM:\s+(\d+) kB", PROC_STATUS.read_text(), re.M) if PROC_STATUS.exists() else None
    return int(match.group(1)) * 1024 if match else None


def peak_memory_bytes(device: torch.device, since: MemoryMark | None = None) -> tuple[int, str]:
    """Peak memory and what it measures: CUDA's allocator peak on a GPU (``cuda_max_allocated``); on the CPU,
    after :func:`reset_peak_memory` succeeded, the peak resident memory since (``peak_rss``), else the process's
    max RSS over its life (``process_max_rss``). A kind ends in ``_reused`` when the process had trained before
    ``since``: its figure then includes what that left, and compares with no other run's."""
    suffix = "_reused" if since is not None and since.reused else ""
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device), "cuda_max_allocated" + suffix
    if since is not None and since.reset:
        hwm = _vm_hwm()
        if hwm is not None:
            return hwm, "peak_rss" + suffix
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024, "process_max_rss"
