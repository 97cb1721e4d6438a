#!/usr/bin/env bash
# Installs the pinned npm packages (package-lock.json) and copies the browser files the dashboard serves
# into ../static/vendor/ (gitignored). `make` runs this; the browser tests run it when the files are missing.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
vendor="$here/../static/vendor"
npm ci --prefix "$here" --no-audit --no-fund --loglevel=error
mkdir -p "$vendor"
cp "$here/node_modules/lightweight-charts/dist/lightweight-charts.standalone.production.js" "$vendor/"
cp "$here/node_modules/lightweight-charts/LICENSE" "$vendor/lightweight-charts.LICENSE"
