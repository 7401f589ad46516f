#!/usr/bin/env bash
# Build the vipmux Debian package with dpkg-deb from the release build (no rebuild when it is current).
# Usage: scripts/package.sh [--binary PATH] [--out DIR]
#   --binary PATH  package this vipmux binary instead of building target/release/vipmux
#   --out DIR      where the .deb goes (default target/debian)
# Prints the path of the .deb. README "Debian package" lists what it installs.
set -euo pipefail
cd "$(dirname "$0")/.."

binary=""
out=target/debian
while [ $# -gt 0 ]; do
  case $1 in
    --binary) binary=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    *) echo "usage: $0 [--binary PATH] [--out DIR]" >&2; exit 2 ;;
  esac
done
if [ -z "$binary" ]; then
  cargo build --release --quiet --bin vipmux
  binary=target/release/vipmux
fi

version=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -1)
arch=$(dpkg --print-architecture)
mkdir -p "$out"
stage=$(mktemp -d "${TMPDIR:-/tmp}/vipmux-deb.XXXXXX")
trap 'rm -rf "$stage"' EXIT
root=$stage/root

# Files: the binary, the unit and its helper, the configuration, man page, completions, dashboard.
install -D -m 0755 --strip "$binary" "$root/usr/bin/vipmux"
install -D -m 0644 packaging/vipmux.service "$root/lib/systemd/system/vipmux.service"
install -D -m 0755 packaging/setup-hugepages "$root/usr/lib/vipmux/setup-hugepages"
install -D -m 0644 packaging/default "$root/etc/default/vipmux"
install -D -m 0644 examples/spec-example.toml "$root/etc/vipmux/vipmux.toml"
for f in dpdk-config/*.toml; do
  install -D -m 0644 "$f" "$root/etc/vipmux/$f"
done
install -d "$root/usr/share/man/man1" "$root/usr/share/bash-completion/completions" \
  "$root/usr/share/zsh/vendor-completions" "$root/usr/share/fish/vendor_completions.d"
"$binary" man | gzip -9n >"$root/usr/share/man/man1/vipmux.1.gz"
"$binary" completions bash >"$root/usr/share/bash-completion/completions/vipmux"
"$binary" completions zsh >"$root/usr/share/zsh/vendor-completions/_vipmux"
"$binary" completions fish >"$root/usr/share/fish/vendor_completions.d/vipmux.fish"
install -D -m 0644 dashboards/vipmux.json "$root/usr/share/vipmux/dashboards/vipmux.json"
install -D -m 0644 README.md "$root/usr/share/doc/vipmux/README.md"
printf 'vipmux\nLicense: Apache-2.0\n' >"$root/usr/share/doc/vipmux/copyright"

# Shared-library dependencies (libc, and those of the DPDK linked into the binary: libnuma, the
# rdma-core and crypto libraries of its drivers, ...) as dpkg-shlibdeps finds them.
mkdir -p "$stage/debian"
printf 'Source: vipmux\n\nPackage: vipmux\nArchitecture: any\n' >"$stage/debian/control"
depends=$(cd "$stage" && dpkg-shlibdeps -O -e root/usr/bin/vipmux 2>/dev/null | sed -n 's/^shlibs:Depends=//p')

install -d "$root/DEBIAN"
(cd "$root" && find etc -type f | sed 's|^|/|' | sort) >"$root/DEBIAN/conffiles"
size=$(du -sk --exclude=DEBIAN "$root" | cut -f1)
cat >"$root/DEBIAN/control" <<CONTROL
Package: vipmux
Version: $version
Architecture: $arch
Maintainer: vipmux maintainers <vipmux@localhost>
Installed-Size: $size
Depends: $depends
Recommends: frr | exabgp
Section: net
Priority: optional
Description: DPDK-accelerated L4 load-balancer MUX with Azure Load Balancer semantics
 vipmux answers for virtual IPs and spreads their traffic over pools of backends
 with the semantics of Azure Load Balancer (Standard SKU). The package ships the
 binary, a systemd unit (hugepages, reload on SIGHUP, drain on stop), the example
 configuration and DPDK profiles in /etc/vipmux, a man page, shell completions
 and a Grafana dashboard.
CONTROL
for script in postinst prerm postrm; do
  install -m 0755 "packaging/$script" "$root/DEBIAN/$script"
done

deb=$out/vipmux_${version}_${arch}.deb
dpkg-deb --root-owner-group -Zgzip --build "$root" "$deb" >/dev/null
echo "$deb"
