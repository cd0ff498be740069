#!/usr/bin/env bash
# Installs what the Control UI's browser test (tests/it/ui.rs) needs, and is fast when it is
# there: Debian's Chromium (/usr/bin/chromium; Playwright never downloads a browser here), a CJK
# font for the Chinese pages' screenshots, and the pinned driver packages of tests/ui (playwright-core, axe-core) from the npm registry.
#
# Needs node and npm; for Chromium, root with apt-get (or install the `chromium` package first).
# Usage: scripts/install-ui-deps.sh     (make test runs it)
set -euo pipefail
cd "$(dirname "$0")/.."

if [ ! -x /usr/bin/chromium ]; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        echo "install-ui-deps: installing Debian's chromium"
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
    else
        echo "install-ui-deps: /usr/bin/chromium is missing; install Debian's chromium package" >&2
        exit 1
    fi
fi
# A CJK font, so the Chinese pages' screenshots show their text (not boxes).
if ! fc-list :lang=zh 2>/dev/null | grep -q . && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "install-ui-deps: installing a CJK font (fonts-wqy-zenhei)"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq fonts-wqy-zenhei >/dev/null
fi
command -v node >/dev/null 2>&1 || { echo "install-ui-deps: node is missing" >&2; exit 1; }
if [ ! -d tests/ui/node_modules/playwright-core ] || [ ! -d tests/ui/node_modules/axe-core ]; then
    echo "install-ui-deps: npm ci in tests/ui"
    npm ci --prefix tests/ui --no-audit --no-fund --silent
fi
