#!/usr/bin/env bash
# Installs the system libraries Atelier links against (Debian/Ubuntu). Idempotent; needs root or sudo.
set -euo pipefail
packages=(libopenblas-dev libpng-dev libnng-dev libsqlite3-dev pkg-config)
# `scripts/setup.sh --test`: also what only the tests need (SIMDe and gcc for the AVX-512 kernel
# check on machines without AVX-512; a PostgreSQL server for the PostgreSQL store's tests; openssl
# for scripts/make-test-ca.sh, which the TLS tests run; PyYAML and systemd-analyze for the Deploy/
# manifest tests; promtool (prometheus) and headless Chromium, the real consumers of the
# coordinator's /metrics and status page in CoordinatorHTTPProcessTests). libnng-dev brings
# libmbedtls-dev, whose libraries the transport links to check certificate files.
if [ "${1:-}" = "--test" ]; then packages+=(libsimde-dev gcc postgresql openssl python3-yaml systemd prometheus chromium); fi
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
command -v swift >/dev/null || { echo "setup: Swift 6.1+ is required (https://www.swift.org/install/linux/)"; exit 1; }
