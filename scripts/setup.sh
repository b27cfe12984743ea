#!/usr/bin/env bash
# Installs what worker-orcd needs on a fresh Debian 12 machine. Idempotent: packages already present are kept.
# Everything comes from Debian's archive; nothing is downloaded at configure, build or test time.
set -euo pipefail

packages=(
  build-essential cmake ninja-build pkg-config git
  libcli11-dev libfmt-dev nlohmann-json3-dev libgtest-dev libgmock-dev libbenchmark-dev
  libboost1.74-dev libutf8proc-dev   # Boost.Beast/Asio (header-only): the HTTP transport
  clang libclang-rt-14-dev          # libFuzzer + sanitizer runtimes
  python3 python3-prometheus-client # the metrics test parses /metrics with the real client
  curl                              # server tests drive the worker with curl
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
if ((${#missing[@]})); then
  $SUDO apt-get update
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y --no-install-recommends "${missing[@]}"
fi
# Node.js and npm (for the openai client in the server tests) may come from Debian or from the machine image; Debian's
# npm conflicts with other nodejs builds, so it is installed only where neither is present.
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  DEBIAN_FRONTEND=noninteractive ${SUDO:-} apt-get install -y --no-install-recommends nodejs npm
fi
# The official `openai` client for the server tests, at the version tests/server/package-lock.json pins (installed
# here, so the tests download nothing).
lock_version() { sed -n '/"node_modules\/openai"/,/version/ s/.*"version": "\(.*\)".*/\1/p' "$1" | head -n 1; }
here=$(cd "$(dirname "$0")/.." && pwd)
if [ "$(lock_version "$here/tests/server/package-lock.json")" != \
     "$(sed -n 's/.*"version": "\(.*\)".*/\1/p' "$here/tests/server/node_modules/openai/package.json" 2>/dev/null | head -n 1)" ]; then
  (cd "$here/tests/server" && npm ci --no-audit --no-fund --loglevel=error)
fi
echo "setup: ${#packages[@]} Debian packages, node $(node --version), openai npm client present"
