#!/usr/bin/env bash
# Install what checking arm64 bundles on an x86 host needs: QEMU user-mode emulation and
# debootstrap (Debian/Ubuntu, as root). The aarch64 root itself is built on first use and
# cached (frugalml.targets.arm64_root); CI runs this before the tests.
set -euo pipefail
if command -v qemu-aarch64-static >/dev/null && command -v debootstrap >/dev/null; then
  echo "arm64 emulation tools present"; exit 0
fi
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
  echo "arm64 emulation needs qemu-user-static and debootstrap: run this as root on Debian/Ubuntu" >&2
  exit 1
fi
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq qemu-user-static debootstrap >/dev/null
echo "arm64 emulation tools installed"
