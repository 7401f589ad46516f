#!/usr/bin/env bash
# Idempotent machine setup for vipmux: Debian packages, test tools, hugepages, release build.
# Usage: scripts/setup.sh [--no-build]
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf '[setup] %s\n' "$*" >&2; }

PACKAGES=(
  dpdk dpdk-dev libdpdk-dev clang libclang-dev pkg-config build-essential
  iproute2 iputils-ping procps curl python3 python3-scapy python3-prometheus-client nftables tcpdump tshark ethtool
  wrk haproxy nginx-light python3-matplotlib exabgp frr nmap
  dpkg-dev systemd valgrind libsystemd-dev
)

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  log "installing Debian packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  # The benchmarks run their own nginx/haproxy in namespaces: stop a system daemon the packages started,
  # by the PID in its own pidfile.
  for pf in /run/nginx.pid /run/haproxy.pid; do
    pid=$(cat "$pf" 2>/dev/null || true)
    case $pid in '' | *[!0-9]*) continue ;; esac
    case $(cat "/proc/$pid/comm" 2>/dev/null) in nginx | haproxy) kill "$pid" 2>/dev/null || true ;; esac
  done
else
  log "Debian packages present"
fi

# Rust: the project needs cargo/rustc >= 1.85 (Debian 12's own rustc is 1.63, too old). The machine
# image provides a rustup toolchain; say so plainly when it is missing rather than fail later.
if ! command -v cargo >/dev/null 2>&1; then
  for d in "$HOME/.cargo/bin" /usr/local/cargo/bin; do
    [ -x "$d/cargo" ] && export PATH="$d:$PATH" && break
  done
fi
if ! command -v cargo >/dev/null 2>&1; then
  log "no Rust toolchain found: install Rust >= 1.85 (rustup) and rerun"
  exit 1
fi
rust_minor=$(rustc --version | sed -E 's/^rustc 1\.([0-9]+).*/\1/')
if [ "${rust_minor:-0}" -lt 85 ]; then
  log "rustc $(rustc --version) is too old: vipmux needs Rust >= 1.85"
  exit 1
fi

if ! command -v cargo-nextest >/dev/null 2>&1 && ! cargo nextest --version >/dev/null 2>&1; then
  log "installing cargo-nextest"
  cargo install --locked cargo-nextest
fi

# cargo-fuzz runs the fuzz targets (scripts/fuzz.sh) on the stable toolchain, without a sanitizer.
if ! cargo fuzz --version >/dev/null 2>&1; then
  log "installing cargo-fuzz"
  cargo install --locked cargo-fuzz
fi

# Hugepages: 1024 x 2 MiB. DPDK runs without them (--no-huge --file-prefix), 40-60 % slower.
HUGEPAGES=${VIPMUX_HUGEPAGES:-1024}
hp_ok=1
cur=$(cat /proc/sys/vm/nr_hugepages 2>/dev/null || echo 0)
if [ "$cur" -lt "$HUGEPAGES" ]; then
  echo "$HUGEPAGES" > /proc/sys/vm/nr_hugepages 2>/dev/null || true
  cur=$(cat /proc/sys/vm/nr_hugepages 2>/dev/null || echo 0)
fi
if [ "$cur" -lt 64 ]; then
  hp_ok=0
fi
if ! grep -qs ' /dev/hugepages hugetlbfs ' /proc/mounts; then
  mkdir -p /dev/hugepages
  mount -t hugetlbfs nodev /dev/hugepages 2>/dev/null || hp_ok=0
fi
if [ "$hp_ok" = 1 ]; then
  log "hugepages: $cur x 2 MiB reserved, hugetlbfs on /dev/hugepages"
else
  log "hugepages unavailable: DPDK will run with --no-huge --file-prefix (expect 40-60 % lower throughput)"
fi

if [ "${1:-}" != "--no-build" ]; then
  log "building (release)"
  cargo build --release --quiet
fi
log "done"
