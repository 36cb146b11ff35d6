#!/usr/bin/env bash
# Installs the Debian packages the lab, the integration tests and the benchmarks use.
# Idempotent: installs only what is missing. Needs root (the lab needs root anyway).
set -euo pipefail
need=()
for pkg in iproute2 nftables iputils-arping openssh-server openssh-client postgresql postgresql-contrib \
           nginx fuse3 keepalived cloud-init util-linux procps psmisc curl python3; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || need+=("$pkg")
done
if [ ${#need[@]} -eq 0 ]; then exit 0; fi
if [ "$(id -u)" -ne 0 ]; then
  echo "mirrorfarm: missing Debian packages: ${need[*]}; run as root (sudo) to install them." >&2
  exit 1
fi
echo "mirrorfarm: installing ${need[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get -o DPkg::Lock::Timeout=600 update -qq
# Packages that ship services must not start them here: the lab starts its own, per host.
printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d
trap 'rm -f /usr/sbin/policy-rc.d' EXIT
apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends "${need[@]}" >/dev/null
