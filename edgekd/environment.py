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


def cpu_model() -> str:
    text = _read("/proc/cpuinfo") or ""
    for key in ("model name", "Model", "Hardware", "CPU part"):
        for line in text.splitlines():
            if line.startswith(key) and ":" in line:
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def machine() -> dict:
    temp = _read("/sys/class/thermal/thermal_zone0/temp")
    return {
        "cpu": cpu_model(),
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
