#!/usr/bin/env bash
# Make sure Debian's chromium is installed for the dashboard's browser tests (tests/test_dashboard.py drives
# it with the Python playwright package; `playwright install` downloads its own browser and is never used).
# Idempotent: exits 0 at once when the browser is there. Installs only as root (CI is root); anyone else
# gets the command to run, and the browser tests skip with that reason.
#
# Environment:
#   BATCHEMU_CHROMIUM   the browser binary (default /usr/bin/chromium)
set -euo pipefail

browser="${BATCHEMU_CHROMIUM:-/usr/bin/chromium}"

say() { echo "ensure-browser: $*" >&2; }

if [ -x "$browser" ]; then
    say "chromium already installed ($("$browser" --version 2>/dev/null || echo "$browser"))"
    exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
    say "$browser is missing; the dashboard's browser tests will be skipped. To run them:"
    say "  sudo apt-get update && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y chromium"
    exit 0
fi

say "installing Debian's chromium (about 2 minutes)"
apt-get update -q
DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium
say "installed: $("$browser" --version 2>/dev/null || echo "$browser")"
