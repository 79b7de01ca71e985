#!/usr/bin/env bash
# Fetches the dashboard's browser modules from npm into the gateway package (run by hand
# when upgrading one of them; the files are committed, so serving needs no npm).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
OUT="$ROOT/services/gateway/src/puras_gateway/dashboard/static/vendor"
TMP="$(mktemp -d)"
trap 'rm -rf "$TMP"' EXIT
cd "$TMP"
npm pack --silent preact@11.2.0 htm@3.1.1 @cfworker/json-schema@4.1.6 >/dev/null
for f in *.tgz; do mkdir -p "${f%.tgz}" && tar xzf "$f" -C "${f%.tgz}"; done
cp preact-11.2.0/package/dist/preact.mjs "$OUT/preact.mjs"
# An import map would be an inline script, which the dashboard's CSP forbids.
sed 's/from"preact"/from".\/preact.mjs"/' preact-11.2.0/package/hooks/dist/hooks.mjs >"$OUT/hooks.mjs"
cp htm-3.1.1/package/dist/htm.mjs "$OUT/htm.mjs"
mkdir -p "$OUT/json-schema"
for f in cfworker-json-schema-4.1.6/package/dist/esm/*.js; do
    sed '/^\/\/# sourceMappingURL/d' "$f" >"$OUT/json-schema/$(basename "$f")"
done
echo "vendored into $OUT"
