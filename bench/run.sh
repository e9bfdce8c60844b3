#!/usr/bin/env bash
# Load benchmark (issue 8): a release build on SQLite, clients made by the CLI, 10,000 users made
# over SCIM, then wrk against each scenario. Prints a Markdown table: requests/s, p50 and p99
# latency, errors, and the server's RSS at idle and at its peak during the scenario.
#
#   bench/run.sh                       # every scenario, 10 s each, 32 connections
#   DURATION=30s CONNECTIONS=64 bench/run.sh
#   bench/run.sh jwks discovery        # only these
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION=${DURATION:-10s}
CONNECTIONS=${CONNECTIONS:-32}
THREADS=${THREADS:-2}
USERS=${USERS:-10000}

command -v wrk >/dev/null || {
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk
}
cargo build --release --locked --quiet
bin="${CARGO_TARGET_DIR:-target}/release/tessera"

work=$(mktemp -d)
server=""
cleanup() {
    [ -n "$server" ] && kill "$server" 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
issuer="http://127.0.0.1:$port"
export TESSERA_ISSUER="$issuer" TESSERA_BIND="127.0.0.1:$port" TESSERA_LOG=warn
export DATABASE_URL="sqlite://$work/bench.db?mode=rwc"

json_field() { python3 -c "import json, sys; print(json.load(sys.stdin)['$1'])"; }

"$bin" migrate
cc_secret=$("$bin" client create --client-id bench-cc --grant client_credentials --scope api --json | json_field client_secret)
rs_secret=$("$bin" client create --client-id bench-rs --grant client_credentials --scope api --json | json_field client_secret)
admin_secret=$("$bin" client create --client-id bench-admin --grant client_credentials --scope scim --json | json_field client_secret)

"$bin" serve &
server=$!
for _ in $(seq 100); do
    curl -fs "$issuer/readyz" >/dev/null 2>&1 && break
    sleep 0.1
done
rss_kb() { ps -o rss= -p "$server" | tr -d ' '; }
idle_rss=$(rss_kb)

token_for() {
    curl -fs -u "$1:$2" -d grant_type=client_credentials -d "scope=$3" "$issuer/token" | json_field access_token
}
access_token=$(token_for bench-cc "$cc_secret" api)
admin_token=$(token_for bench-admin "$admin_secret" scim)

# 10,000 users for the SCIM scenario, created through the API (no passwords: no argon2).
python3 - "$issuer" "$admin_token" "$USERS" <<'PY'
import concurrent.futures, json, sys, urllib.request
issuer, token, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
def create(n):
    body = json.dumps({"userName": f"user-{n}", "name": {"familyName": f"Family{n % 97}"},
                       "emails": [{"value": f"user-{n}@example.com", "primary": True}]})
    request = urllib.request.Request(f"{issuer}/scim/v2/Users", data=body.encode(), method="POST",
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/scim+json"})
    urllib.request.urlopen(request).read()
with concurrent.futures.ThreadPoolExecutor(8) as pool:
    list(pool.map(create, range(count)))
PY

basic() { printf 'Authorization: Basic %s' "$(printf '%s:%s' "$1" "$2" | base64 -w0)"; }
form='Content-Type: application/x-www-form-urlencoded'

# name | method | path | body | headers…
scenario() {
    local name=$1 method=$2 path=$3 body=$4
    shift 4
    local peak_file="$work/peak"
    echo "$(rss_kb)" >"$peak_file"
    (
        while kill -0 "$server" 2>/dev/null; do
            now=$(rss_kb)
            [ "$now" -gt "$(cat "$peak_file")" ] && echo "$now" >"$peak_file"
            sleep 0.2
        done
    ) &
    local sampler=$!
    local result
    result=$(wrk -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" -s bench/request.lua \
        "$issuer$path" -- "$method" "$body" "$@" | tail -n 1)
    kill "$sampler" 2>/dev/null || true
    wait "$sampler" 2>/dev/null || true
    python3 - "$name" "$result" "$(cat "$peak_file")" <<'PY'
import json, sys
name, result, peak = sys.argv[1], json.loads(sys.argv[2]), int(sys.argv[3])
rate = result["requests"] / result["seconds"]
errors = result["non_2xx"] + result["socket_errors"]
print(f"| {name} | {rate:,.0f} | {result['p50_us'] / 1000:.2f} | {result['p99_us'] / 1000:.2f} "
      f"| {errors} | {peak / 1024:.0f} |")
PY
}

wanted=("$@")
run() {
    if [ ${#wanted[@]} -eq 0 ] || [[ " ${wanted[*]} " == *" $1 "* ]]; then
        scenario "$@"
    fi
}

echo
echo "$(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs); $CONNECTIONS connections, $DURATION each; idle RSS $((idle_rss / 1024)) MB"
echo
echo "| scenario | requests/s | p50 ms | p99 ms | errors | peak RSS MB |"
echo "|---|---|---|---|---|---|"
run client_credentials POST /token "grant_type=client_credentials" "$(basic bench-cc "$cc_secret")" "$form"
run introspection POST /introspect "token=$access_token" "$(basic bench-rs "$rs_secret")" "$form"
run jwks GET /jwks ""
run discovery GET /.well-known/openid-configuration ""
run scim_filter GET '/scim/v2/Users?filter=userName%20sw%20%22user-50%22&count=20' "" "Authorization: Bearer $admin_token"
