#!/usr/bin/env bash
# Operator top-up (SPEC B4): add <usd> dollars of credit to a project.
#
#   scripts/grant_credits.sh <project_id> <usd>        e.g. scripts/grant_credits.sh 01J... 25
#
# Calls POST $PURAS_API_BASE/v1/admin/projects/<project_id>/credits with the admin token.
# PURAS_API_BASE and PURAS_ADMIN_TOKEN come from the environment, else from the nearest
# .puras/dev.env (written by ./dev up) in this directory or a parent. Same call as
# `puras admin credits grant <project_id> --usd <usd>`.
set -euo pipefail

die() { printf 'error: %s\n' "$*" >&2; exit 1; }

if [ $# -ne 2 ]; then
    printf 'usage: %s <project_id> <usd>\n' "$(basename "$0")" >&2
    exit 2
fi
project=$1
usd=$2
# Ids are URL path segments: refuse anything that could add a segment or a query.
[[ $project =~ ^[A-Za-z0-9_-]+$ ]] || die "'$project' is not a project id"
# A canonical JSON number with at most 6 decimals (a micro is 1e-6 USD), greater than 0.
[[ $usd =~ ^(0|[1-9][0-9]*)(\.[0-9]{1,6})?$ ]] \
    || die "<usd> must be a dollar amount with at most 6 decimals (e.g. 10 or 0.25), got '$usd'"
[[ $usd =~ [1-9] ]] || die "<usd> must be more than 0"

# The value of KEY in the nearest .puras/dev.env; the file is read, never sourced.
from_dev_env() {
    local dir=$PWD file
    while :; do
        file="$dir/.puras/dev.env"
        if [ -f "$file" ]; then
            sed -n -E "s/^[[:space:]]*(export[[:space:]]+)?$1=['\"]?([^'\"]*)['\"]?[[:space:]]*$/\\2/p" \
                "$file" | tail -n 1
            return 0
        fi
        [ "$dir" = / ] && return 0
        dir=$(dirname "$dir")
    done
}

base=${PURAS_API_BASE:-$(from_dev_env PURAS_API_BASE)}
token=${PURAS_ADMIN_TOKEN:-$(from_dev_env PURAS_ADMIN_TOKEN)}
hint="start the dev stack with ./dev up (it writes .puras/dev.env), or export it"
[ -n "$base" ] || die "PURAS_API_BASE is not set and no .puras/dev.env has it; $hint"
[ -n "$token" ] || die "PURAS_ADMIN_TOKEN is not set and no .puras/dev.env has it; $hint"
command -v curl >/dev/null || die "curl is not installed"
base=${base%/}

body=$(mktemp)
trap 'rm -f "$body" "$body.err"' EXIT
# The token goes in on stdin (-H @-), not on the command line other users can read in ps.
set +e
status=$(printf 'Authorization: Bearer %s\n' "$token" | curl -sS -o "$body" -w '%{http_code}' \
    --connect-timeout 5 --max-time 60 -X POST -H @- -H 'Content-Type: application/json' \
    --data "{\"usd\": $usd}" "$base/v1/admin/projects/$project/credits" 2>"$body.err")
rc=$?
set -e
if [ $rc -ne 0 ]; then
    reason=$(cat "$body.err")
    case $rc in
        7) die "cannot reach the Puras API at $base (connection refused); is the stack running? Start it with ./dev up" ;;
        *) die "calling $base failed (curl exit $rc): $reason" ;;
    esac
fi
if [ "$status" -ge 400 ]; then
    # {"error": {"code", "message"}} (or FastAPI's {"detail": ...}): show the message.
    message=$(python3 -c '
import json, sys
try:
    b = json.load(open(sys.argv[1]))
    e = b.get("error") if isinstance(b, dict) else None
    print(e.get("message") if isinstance(e, dict) else (b.get("detail") or json.dumps(b)))
except Exception:
    print(open(sys.argv[1], errors="replace").read()[:300])
' "$body" 2>/dev/null || head -c 300 "$body")
    die "$message (HTTP $status)"
fi
cat "$body"
echo
