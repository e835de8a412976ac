#!/usr/bin/env bash
# What tests/console.rs needs: Chromium and its WebDriver (Debian's chromium and
# chromium-driver, installed with apt-get when missing) and the axe-core npm package, pinned,
# installed into target/console-node/ (gitignored) where the test reads axe.min.js.
set -euo pipefail
cd "$(dirname "$0")/.."

AXE_VERSION=4.14.1
NODE_DIR=target/console-node

if ! command -v chromedriver >/dev/null 2>&1 || ! [ -x /usr/bin/chromium ]; then
    if [ "$(id -u)" -eq 0 ]; then sudo=""; else sudo="sudo"; fi
    $sudo apt-get update
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y --no-install-recommends \
        chromium chromium-driver
fi
chromedriver --version

axe="$NODE_DIR/node_modules/axe-core/axe.min.js"
if ! [ -f "$axe" ] || ! grep -q "\"version\": \"$AXE_VERSION\"" "$NODE_DIR/node_modules/axe-core/package.json"; then
    mkdir -p "$NODE_DIR"
    npm install --prefix "$NODE_DIR" --no-save --no-audit --no-fund --ignore-scripts \
        "axe-core@$AXE_VERSION"
fi
echo "axe-core $AXE_VERSION: $axe"
