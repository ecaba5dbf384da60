"""Choosing the device and the numeric precision the encoder runs at."""

from __future__ import annotations

import functools
import platform
from pathlib import Path

import torch

from search.errors import InvalidInputError

PRECISIONS = ("auto", "fp32", "bf16", "fp16")
DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}


def select_device(device: str | None) -> torch.device:
    """The device asked for, or the best present: CUDA, then MPS, then CPU."""
    if device is None or device == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        chosen = torch.device(device)
    except RuntimeError as exc:
        raise InvalidInputError(f"unknown device {device!r}") from exc
    if chosen.type == "cuda" and not torch.cuda.is_available():
        raise InvalidInputError("device cuda was asked for, but CUDA is not available")
    if chosen.type == "mps" and not torch.backends.mps.is_available():
        raise InvalidInputError("device mps was asked for, but MPS is not available")
    return chosen


@functools.cache
def cpu_has_native_bf16() -> bool:
    """True when the CPU multiplies bf16 in hardware (AMX or AVX512-BF16).

    Without it, bf16 on the CPU is emulated and slower than fp32.
    """
    cpuinfo = Path("/proc/cpuinfo")
    if platform.system() != "Linux" or not cpuinfo.is_file():
        return False
    for line in cpuinfo.read_text(encoding="ascii", errors="replace").splitlines():
        if line.startswith("flags"):
            flags = set(line.split(":", 1)[1].split())
            return bool(flags & {"amx_bf16", "avx512_bf16"})
    return False


def select_precision(precision: str, device: torch.device) -> str:
    """Resolve ``auto``: bf16 on CUDA and on CPUs with native bf16, else fp32."""
    if precision not in PRECISIONS:
        raise InvalidInputError(
            f"unknown precision {precision!r}; use one of {', '.join(PRECISIONS)}"
        )
    if precision == "fp16" and device.type == "cpu":
        raise InvalidInputError("fp16 needs a GPU; use bf16 or fp32 on the CPU")
    if precision != "auto":
        return precision
    if device.type == "cuda":
        return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
    if device.type == "cpu" and cpu_has_native_bf16():
        return "bf16"
    return "fp32"
