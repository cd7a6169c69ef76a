#!/usr/bin/env bash
# Idempotent set-up for a fresh Debian machine: system libraries, .venv, the project.
# Usage: infra/bootstrap.sh [run|test|bench]   ("test" also installs what the test suite needs; "bench" adds the
# wrk load generator the web benchmarks drive the server with)
# A second run with nothing changed costs well under a second.
set -euo pipefail
cd "$(dirname "$0")/.."

mode="${1:-run}"
runtime_debs=(libpango-1.0-0 libpangoft2-1.0-0 libharfbuzz0b libharfbuzz-subset0 libfontconfig1 fonts-dejavu-core)
test_debs=(poppler-utils chromium)
bench_debs=(wrk)

wanted=("${runtime_debs[@]}")
[ "$mode" = "test" ] || [ "$mode" = "bench" ] && wanted+=("${test_debs[@]}")
[ "$mode" = "bench" ] && wanted+=("${bench_debs[@]}")

missing=()
for pkg in "${wanted[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if [ "${#missing[@]}" -gt 0 ]; then
    echo "bootstrap: installing Debian packages: ${missing[*]}"
    SUDO=""
    [ "$(id -u)" -ne 0 ] && SUDO="sudo"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

PYTHON="${PYTHON:-python3}"
if ! "$PYTHON" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)'; then
    echo "bootstrap: Rapport needs Python 3.11 or newer ($PYTHON is $("$PYTHON" --version 2>&1))" >&2
    exit 1
fi
if [ ! -x .venv/bin/python ]; then
    echo "bootstrap: creating .venv"
    "$PYTHON" -m venv .venv
fi

extras="dev"
stamp=".venv/.rapport-installed"
want="$(sha256sum pyproject.toml | cut -d' ' -f1) $extras"
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
    echo "bootstrap: installing Rapport and its dependencies into .venv"
    .venv/bin/python -m pip install --quiet --disable-pip-version-check --upgrade pip >/dev/null
    .venv/bin/python -m pip install --quiet --disable-pip-version-check -e ".[$extras]"
    echo "$want" > "$stamp"
fi
