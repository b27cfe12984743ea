#!/usr/bin/env bash
# Installs what worker-orcd needs on a fresh Debian 12 machine. Idempotent: packages already present are kept.
# Everything comes from Debian's archive; nothing is downloaded at configure, build or test time.
set -euo pipefail

packages=(
  build-essential cmake ninja-build pkg-config git ccache
  libcli11-dev libfmt-dev nlohmann-json3-dev libgtest-dev libgmock-dev libbenchmark-dev
  libboost1.74-dev libutf8proc-dev   # Boost.Beast/Asio (header-only): the HTTP transport
  libedit-dev                       # line editing for `orcd chat`
  clang libclang-rt-14-dev          # libFuzzer + sanitizer runtimes
  clang-format-14 clang-tidy-14     # scripts/format.sh and scripts/tidy.sh (CI checks both)
  python3 python3-prometheus-client # the metrics test parses /metrics with the real client
  python3-jsonschema                # the grammar tests validate structured output with it
  python3-jinja2                    # the template engine is compared with jinja2 on random conversations
  python3-matplotlib                # scripts/plot_bench.py: the plots of docs/ (ctest docs_plots)
  curl                              # server tests drive the worker with curl
  chromium                          # the chat page's browser test (headless, driven by puppeteer-core)
  haproxy                           # scripts/serve-fleet.sh: the balancer in front of one worker per GPU
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
# The npm packages of the server tests (the official `openai` client, puppeteer-core for the browser test), at the
# versions tests/server/package-lock.json pins; installed here so the tests download nothing. A copy of the lock file
# inside node_modules marks an install that matches it.
here=$(cd "$(dirname "$0")/.." && pwd)
if ! cmp -s "$here/tests/server/package-lock.json" "$here/tests/server/node_modules/.orcd-installed-lock.json"; then
  (cd "$here/tests/server" && npm ci --no-audit --no-fund --loglevel=error &&
   cp package-lock.json node_modules/.orcd-installed-lock.json)
fi
echo "setup: ${#packages[@]} Debian packages, node $(node --version), npm test clients present (openai, puppeteer-core)"
