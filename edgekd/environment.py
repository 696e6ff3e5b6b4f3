"""What machine and which library versions produced a number (TF-free)."""

from __future__ import annotations

import os
import platform
from importlib import metadata
from pathlib import Path

PACKAGES = ("edgekd", "numpy", "tensorflow", "tf-keras", "tensorflow-model-optimization",
            "tf2onnx", "onnx", "onnxruntime", "ai-edge-litert")


def versions(packages=PACKAGES) -> dict[str, str | None]:
    out: dict[str, str | None] = {"python": platform.python_version()}
    for name in packages:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


def _read(path: str) -> str | None:
    try:
        return Path(path).read_text().strip()
    except OSError:
        return None


# ARM "CPU part" ids of the cores found on Raspberry Pi and Jetson boards
ARM_PARTS = {"0xd03": "Cortex-A53", "0xd04": "Cortex-A35", "0xd05": "Cortex-A55",
             "0xd07": "Cortex-A57", "0xd08": "Cortex-A72", "0xd09": "Cortex-A73",
             "0xd0b": "Cortex-A76", "0xd0c": "Neoverse-N1", "0xd42": "Cortex-A78AE",
             "0xd4b": "Cortex-A78C"}


def cpu_model() -> str:
    text = _read("/proc/cpuinfo") or ""
    board = (_read("/proc/device-tree/model") or "").rstrip("\x00")
    for key in ("model name", "Model", "Hardware", "CPU part"):
        for line in text.splitlines():
            if line.startswith(key) and ":" in line:
                value = line.split(":", 1)[1].strip()
                value = ARM_PARTS.get(value, value) if key == "CPU part" else value
                return f"{board} ({value})" if board and board not in value else value
    return board or platform.processor() or platform.machine()


# CPU features that decide whether int8 beats float32 in XNNPACK and onnxruntime:
# without a dot-product instruction (x86 VNNI/AMX, ARM dotprod/i8mm) int8 kernels
# widen to 16 bits and run about as fast as float32 FMA (docs/results/latency_vs_seed_epyc.md).
INT8_FEATURES = ("avx2", "avx512f", "avx512_vnni", "avx_vnni", "amx_int8",
                 "asimd", "asimddp", "i8mm", "sve")


def int8_features(cpuinfo: str | None = None) -> list[str]:
    """The INT8_FEATURES this CPU reports in /proc/cpuinfo (x86 "flags", ARM
    "Features"), in INT8_FEATURES order; [] where cpuinfo says nothing."""
    text = _read("/proc/cpuinfo") if cpuinfo is None else cpuinfo
    found: set[str] = set()
    for line in (text or "").splitlines():
        key, sep, value = line.partition(":")
        if sep and key.strip() in ("flags", "Features"):
            found.update(value.split())
    return [f for f in INT8_FEATURES if f in found]


def int8_text(machine: dict) -> str:
    """A machine record's int8 features as "avx2, avx512_vnni"; "" when unknown
    (records from before the field, or a CPU that reports none of them)."""
    return ", ".join(machine.get("int8_features") or [])


def machine() -> dict:
    temp = _read("/sys/class/thermal/thermal_zone0/temp")
    return {
        "cpu": cpu_model(),
        "int8_features": int8_features(),
        "cores": os.cpu_count(),
        "arch": platform.machine(),
        "os": f"{platform.system()} {platform.release()}",
        "hostname": platform.node(),
        "governor": _read("/sys/devices/system/cpu/cpu0/cpufreq/scaling_governor"),
        "temperature_c": round(int(temp) / 1000, 1) if temp and temp.isdigit() else None,
        "emulated": is_emulated(),
    }


def is_emulated() -> bool:
    """QEMU user mode: the emulator is this process's interpreter or its parent."""
    if os.environ.get("EDGEKD_EMULATED"):
        return True
    try:
        exe = os.readlink("/proc/self/exe")
    except OSError:
        exe = ""
    return "qemu" in exe.lower()
