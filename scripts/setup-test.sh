#!/usr/bin/env bash
# Installs what the test suite needs on a Debian machine: the Debian packages listed in
# scripts/debian-packages.txt (as root; skipped when already present) and the npm packages
# from the lockfile.
set -euo pipefail
cd "$(dirname "$0")/.."
mapfile -t pkgs < <(grep -v '^\s*#' scripts/debian-packages.txt | grep -v '^\s*$')
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "setup-test: installing ${missing[*]} needs root (the router tests will be skipped without them)" >&2
  else
    echo "setup-test: apt-get install ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  fi
fi
npm ci --no-audit --no-fund
