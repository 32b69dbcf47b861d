#!/usr/bin/env bash
# Everything the tests need on a fresh Debian machine, installed or built
# once; later runs check and return in a second or two.
#
#   Debian packages  prometheus + promtool (utilisation), chromium +
#                    fonts-noto-cjk + poppler-utils (the printed letters),
#                    runc, containernetworking-plugins, iptables, e2fsprogs,
#                    busybox-static, musl-tools (the local node and its images)
#   Rust target      x86_64-unknown-linux-musl (the operator's static binary,
#                    as the Dockerfile builds it, for the node's image)
#   Go builds        the control plane (tools/build-control-plane.sh) and the
#                    node (tools/build-node.sh), cached by version
set -euo pipefail
cd "$(dirname "$0")/.."

sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
missing=()
need() { command -v "$1" >/dev/null || [ -e "$1" ] || missing+=("$2"); }
need promtool prometheus
need prometheus prometheus
need chromium chromium
fc-list 2>/dev/null | grep -c "Noto Serif CJK" >/dev/null || missing+=(fonts-noto-cjk)
need pdftotext poppler-utils
need pdfinfo poppler-utils
need /usr/sbin/runc runc
need /usr/lib/cni/bridge containernetworking-plugins
need /usr/sbin/iptables iptables
need /usr/sbin/mkfs.ext4 e2fsprogs
need /bin/busybox busybox-static
need musl-gcc musl-tools
if [ ${#missing[@]} -gt 0 ]; then
  mapfile -t missing < <(printf '%s\n' "${missing[@]}" | sort -u)
  echo "installing Debian packages: ${missing[*]}" >&2
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
  # The prometheus package's own service is not wanted: the tests start their own.
  $sudo systemctl disable --now prometheus 2>/dev/null || true
fi

if ! rustup target list --installed 2>/dev/null | grep -qx x86_64-unknown-linux-musl; then
  echo "adding the Rust target x86_64-unknown-linux-musl" >&2
  rustup target add x86_64-unknown-linux-musl >&2
fi

tools/build-control-plane.sh >/dev/null
tools/build-node.sh >/dev/null
