#!/usr/bin/env bash
# Build an emulated aarch64 (Raspberry Pi-like) userland with edgekd's runtime
# extra installed, following ../shared/notes/arm-emulation.md:
#   QEMU user mode + Debian arm64 (minbase, unpacked without maintainer
#   scripts) + aarch64 wheels resolved by the host's pip.
# Then writes $SYSROOT/bin-host/{python3,uname}: x86 shims that run the
# aarch64 binaries under qemu with a pinned CPU (default cortex-a72: with
# QEMU 7.2's default `-cpu max`, XNNPACK's int8 kernels give wrong results).
#
#   scripts/arm-sysroot.sh [SYSROOT]      (idempotent; ~1.5 min, ~0.6 GB)
set -euo pipefail
SYSROOT=$(realpath -m "${1:-${EDGEKD_ARM_SYSROOT:-/var/tmp/edgekd-arm/sysroot}}")
CPU=${EDGEKD_ARM_CPU:-cortex-a72}
CPU_PART=${EDGEKD_ARM_CPU_PART:-0xd08}   # 0xd08 = Cortex-A72 in /proc/cpuinfo
PIP=${PIP:-python3 -m pip}
[ -f "$SYSROOT/.edgekd-ready" ] && { echo "$SYSROOT ready"; exit 0; }

need=()
command -v qemu-aarch64-static >/dev/null || need+=(qemu-user-static)
command -v debootstrap >/dev/null || need+=(debootstrap)
if [ ${#need[@]} -gt 0 ]; then
  apt-get update -q && apt-get install -y -q --no-install-recommends "${need[@]}"
fi

# The machine's own Debian mirror (never a hard-coded host).
mirror=$(awk '/^URIs:/ {print $2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)
[ -n "$mirror" ] || mirror=$(awk '/^deb / {print $2; exit}' /etc/apt/sources.list)

rm -rf "$SYSROOT" && mkdir -p "$SYSROOT"
debootstrap --arch=arm64 --variant=minbase --foreign --include=python3 bookworm "$SYSROOT" "$mirror" >/dev/null
for d in "$SYSROOT"/var/cache/apt/archives/*.deb; do dpkg-deb -x "$d" "$SYSROOT"; done

# onnxruntime / ai-edge-litert segfault at import if they see the host's x86 cpuinfo.
mkdir -p "$SYSROOT/proc"
: > "$SYSROOT/proc/cpuinfo"
for ((i = 0; i < $(nproc); i++)); do
  printf 'processor\t: %d\nBogoMIPS\t: 108.00\nFeatures\t: fp asimd evtstrm crc32 cpuid\nCPU implementer\t: 0x41\nCPU architecture: 8\nCPU variant\t: 0x0\nCPU part\t: %s\nCPU revision\t: 3\n\n' "$i" "$CPU_PART" >> "$SYSROOT/proc/cpuinfo"
done

PLAT="--only-binary=:all: --python-version 3.11 --implementation cp --abi cp311 --platform manylinux2014_aarch64 --platform manylinux_2_17_aarch64 --platform manylinux_2_27_aarch64 --platform manylinux_2_28_aarch64"
wheels=$(mktemp -d)
# the runtime extra of pyproject.toml
$PIP download -q -d "$wheels" $PLAT numpy onnxruntime ai-edge-litert jsonschema tqdm
$PIP install -q --no-index --find-links "$wheels" $PLAT --target "$SYSROOT/opt/site" numpy onnxruntime ai-edge-litert jsonschema tqdm
rm -rf "$wheels"

mkdir -p "$SYSROOT/bin-host"
cat > "$SYSROOT/bin-host/python3" <<SH
#!/bin/sh
# aarch64 python under QEMU user mode; exported so bench's workers use it too.
export EDGEKD_PYTHON="$SYSROOT/bin-host/python3" EDGEKD_EMULATED="qemu-aarch64 -cpu $CPU"
export PYTHONPATH="$SYSROOT/opt/site\${PYTHONPATH:+:\$PYTHONPATH}"
exec qemu-aarch64-static -cpu $CPU -L "$SYSROOT" "$SYSROOT/usr/bin/python3.11" "\$@"
SH
cat > "$SYSROOT/bin-host/uname" <<SH
#!/bin/sh
exec qemu-aarch64-static -cpu $CPU -L "$SYSROOT" "$SYSROOT/usr/bin/uname" "\$@"
SH
chmod +x "$SYSROOT/bin-host/python3" "$SYSROOT/bin-host/uname"
"$SYSROOT/bin-host/python3" -c "import platform, numpy, onnxruntime, ai_edge_litert; print('aarch64 sysroot ok:', platform.machine(), numpy.__version__, onnxruntime.__version__)"
touch "$SYSROOT/.edgekd-ready"
