#!/usr/bin/env bash
# Makes sure a Chromium is on PATH for the dashboard's browser tests (tests/browser drives
# the system's Chromium through Playwright; Playwright's own browser download is never
# used). `./dev test` runs this before pytest, so a fresh Debian machine needs nothing
# done by hand:
#   - a chromium (chromium-browser, google-chrome) on PATH: nothing to do, nothing printed;
#   - root with apt-get: installs Debian's `chromium` (one log line; apt's output only
#     if it fails), refreshing the package lists first only when they are missing;
#   - otherwise: says how to install it.
# Exit status: 0 when a Chromium is there afterwards. When none could be had it is 1,
# unless --soft is given: then it is 0 and the browser tests themselves fail with the
# same advice when they start (so `./dev test tests/unit` on a laptop without Chromium
# is not stopped by a browser it does not use).
# --dry-run prints the commands it would run instead of running them.
set -euo pipefail

soft=0
dry=0
for arg in "$@"; do
    case "$arg" in
        --soft) soft=1 ;;
        --dry-run) dry=1 ;;
        *) echo "usage: $0 [--soft] [--dry-run]" >&2; exit 2 ;;
    esac
done

log() { printf '[browser] %s\n' "$*" >&2; }

# The names tests/dash.py looks for, in its order.
have_chromium() {
    local name
    for name in chromium chromium-browser google-chrome google-chrome-stable; do
        command -v "$name" >/dev/null 2>&1 && return 0
    done
    return 1
}

give_up() {
    log "$1"
    log "the dashboard's browser tests (tests/browser) need Chromium on PATH; on Debian or Ubuntu:"
    log "  sudo apt-get install --no-install-recommends chromium   (Ubuntu: chromium-browser)"
    log "elsewhere install Chromium or Chrome from your package manager"
    [ "$soft" = 1 ] && exit 0
    exit 1
}

have_chromium && exit 0

if [ "$(id -u)" != 0 ]; then
    give_up "no Chromium found, and installing one needs root"
fi
if ! command -v apt-get >/dev/null 2>&1; then
    give_up "no Chromium found, and this machine has no apt-get to install one with"
fi

install=(apt-get install -y -qq --no-install-recommends chromium)
if [ "$dry" = 1 ]; then
    log "would run: DEBIAN_FRONTEND=noninteractive ${install[*]}"
    log "would run, if that cannot find the package: apt-get update -qq, then the install again"
    exit 0
fi

log "installing Debian's chromium for the browser tests (apt-get, about 100 MB)"
out="$(mktemp)"
trap 'rm -f "$out"' EXIT
export DEBIAN_FRONTEND=noninteractive
if ! "${install[@]}" >"$out" 2>&1; then
    # A fresh image ships without package lists ("Unable to locate package"): fetch them
    # once and try again. Any other failure (network, a held package) is apt's to tell.
    if grep -qE "Unable to locate package|has no installation candidate" "$out"; then
        apt-get update -qq >"$out" 2>&1 && "${install[@]}" >"$out" 2>&1 || {
            cat "$out" >&2
            give_up "apt-get could not install chromium"
        }
    else
        cat "$out" >&2
        give_up "apt-get could not install chromium"
    fi
fi
have_chromium || give_up "apt-get installed chromium but it is not on PATH"
