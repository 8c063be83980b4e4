#!/usr/bin/env bash
# Install Debian's chromium for the HTML-report test (tests/test_profile.py renders the report
# headless). Idempotent: does nothing when a chromium binary is already on PATH.
set -euo pipefail

if command -v chromium >/dev/null 2>&1; then
    echo "chromium already installed: $(chromium --version 2>/dev/null || echo unknown version)"
    exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
    echo "setup_browser: apt-get not found; install chromium by hand (the report test skips without it)" >&2
    exit 0
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1; then SUDO="sudo"; else
        echo "setup_browser: not root and no sudo; install chromium by hand (the report test skips without it)" >&2
        exit 0
    fi
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends chromium fonts-dejavu-core >/dev/null
echo "chromium installed: $(chromium --version 2>/dev/null || echo unknown version)"
