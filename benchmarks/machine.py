"""What makes results differ between machines: the CPU and its instruction-set extensions, torch's
code path and threads, the device."""

from __future__ import annotations

import os
import platform
from pathlib import Path

import torch

from course_utils.train import pick_device

#: CPU instruction-set extensions that change how fast (and, in the last bits, what) torch computes.
CPU_FLAGS = {"avx2": "AVX2", "avx512f": "AVX-512", "avx512_bf16": "AVX-512 BF16", "amx_tile": "AMX"}
#: Environment variables that change which of them torch uses: ATen's own kernels, oneDNN (the
#: convolutions) and MKL (torch.mm and nn.Linear) each read their own; OMP_NUM_THREADS, the threads.
#: Emulating an AVX2 CPU on an AVX-512 one takes the first three (see docs/benchmark.md).
ISA_VARIABLES = ("ATEN_CPU_CAPABILITY", "ONEDNN_MAX_CPU_ISA", "MKL_ENABLE_INSTRUCTIONS", "OMP_NUM_THREADS")


def cpu_description(cpuinfo: str) -> tuple[str, list[str]]:
    """(model name, instruction-set extensions from CPU_FLAGS) read from /proc/cpuinfo's text."""
    name, flags = platform.processor() or platform.machine(), set()
    for line in cpuinfo.splitlines():
        key, _, value = line.partition(":")
        if key.strip() == "model name" and value.strip():
            name = value.strip()
        elif key.strip() == "flags":
            flags = set(value.split())
    return name, [label for flag, label in CPU_FLAGS.items() if flag in flags]


def load_average() -> list[float] | None:
    """The system's load averages over 1, 5 and 15 minutes (None where unknown, e.g. Windows).

    The benchmark itself keeps about `cores` busy; a figure well above that means something else
    ran beside it and its timings are suspect."""
    try:
        return [round(load, 2) for load in os.getloadavg()]
    except (AttributeError, OSError):
        return None


def machine() -> dict:
    """The machine's record: CPU, its extensions, torch's code path, ISA settings, cores, threads,
    device, and the load averages now (run.measure takes it at the start and updates them at the end)."""
    try:
        cpuinfo = Path("/proc/cpuinfo").read_text()
    except OSError:  # not Linux
        cpuinfo = ""
    cpu, extensions = cpu_description(cpuinfo)
    device = pick_device()
    return {
        "cpu": cpu,
        "cpu_extensions": extensions,
        "torch_cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "isa_settings": {name: os.environ[name] for name in ISA_VARIABLES if name in os.environ},
        "cores": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "device": torch.cuda.get_device_name() if device.type == "cuda" else device.type,
        "platform": platform.platform(),
        "load_average_at_end": load_average(),
    }
