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
    [ -n "${KEEP_WORK:-}" ] && echo "kept $work" || rm -rf "$work"
}
trap cleanup EXIT

port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
issuer="http://127.0.0.1:$port"
export TESSERA_ISSUER="$issuer" TESSERA_BIND="127.0.0.1:$port" TESSERA_LOG=warn
export DATABASE_URL="sqlite://$work/bench.db?mode=rwc"
# wrk starts every sign-in from one address: lift the per-address limit on sign-in starts.
export TESSERA_IP_MAX_SIGN_IN_STARTS=4000000000

json_field() { python3 -c "import json, sys; print(json.load(sys.stdin)['$1'])"; }

"$bin" migrate
cc_secret=$("$bin" client create --client-id bench-cc --grant client_credentials --scope api --json | json_field client_secret)
# A resource server may introspect other clients' access tokens (RFC 7662 §4); any other client
# would be answered `{"active": false}`, a cheaper path than the one measured.
rs_secret=$("$bin" client create --client-id bench-rs --grant client_credentials --scope api \
    --resource-server https://api.bench.example --json | json_field client_secret)
admin_secret=$("$bin" client create --client-id bench-admin --grant client_credentials --scope scim --json | json_field client_secret)
web_secret=$("$bin" client create --client-id bench-web --redirect-uri http://127.0.0.1:9/cb \
    --grant authorization_code --grant refresh_token --scope "openid offline_access" --skip-consent \
    --id-token-alg "${ID_TOKEN_ALG:-ES256}" \
    --json | json_field client_secret)
password=$(python3 -c 'import secrets; print(secrets.token_urlsafe(18))')
printf '%s\n' "$password" | "$bin" user create --username bench --password-stdin >/dev/null

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

# name | URL | wrk script | script arguments…: one table row.
measure() {
    local name=$1 url=$2 script=$3
    shift 3
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
    result=$(WRK_THREADS=$THREADS wrk -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" -s "$script" "$url" -- "$@" | tail -n 1)
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
    python3 -c 'import json, sys; r = json.loads(sys.argv[1]); print(r["requests"] / r["seconds"])' \
        "$result" >"$work/rate"
}

# name | method | path | body | headers…: one request shape, repeated.
scenario() {
    local name=$1 method=$2 path=$3 body=$4
    shift 4
    measure "$name" "$issuer$path" bench/request.lua "$method" "$body" "$@"
}

wanted=("$@")
selected() { [ ${#wanted[@]} -eq 0 ] || [[ " ${wanted[*]} " == *" $1 "* ]]; }
run() {
    if selected "$1"; then
        scenario "$@"
    fi
}

# GET /jwks every 10 ms for the given seconds; prints the p99 latency in ms.
probe_jwks() {
    python3 - "$port" "$1" <<'PY'
import http.client, sys, time
port, seconds = int(sys.argv[1]), float(sys.argv[2])
connection, latencies = http.client.HTTPConnection("127.0.0.1", port), []
end = time.monotonic() + seconds
while time.monotonic() < end:
    start = time.perf_counter()
    connection.request("GET", "/jwks")
    connection.getresponse().read()
    latencies.append(time.perf_counter() - start)
    time.sleep(0.01)
latencies.sort()
print(f"{latencies[int(len(latencies) * 0.99)] * 1000:.2f}")
PY
}

# The flows with one-time values (bench/flows.lua): a web client with PKCE and the user "bench".
flows=bench/flows.lua
verifier=$(python3 -c 'import secrets; print(secrets.token_urlsafe(48))')
challenge=$(python3 -c 'import base64, hashlib, sys
print(base64.urlsafe_b64encode(hashlib.sha256(sys.argv[1].encode()).digest()).rstrip(b"=").decode())' "$verifier")
callback=http%3A%2F%2F127.0.0.1%3A9%2Fcb
authorize="$issuer/authorize?response_type=code&client_id=bench-web&redirect_uri=$callback&scope=openid%20offline_access&state=s&nonce=n&code_challenge=$challenge&code_challenge_method=S256"
# The CSRF double-submit cookie is the browser's choice; every minted sign-in carries this one.
csrf=$(python3 -c 'import secrets; print(secrets.token_urlsafe(32))')
csrf_cookie="Cookie: tessera_csrf=$csrf"
web_auth=$(basic bench-web "$web_secret")

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

if selected code_exchange || selected refresh_rotation; then
    # Sign in once; with that session each /authorize answers with a code at once (SSO). The
    # codes minted in one run feed the exchange; its refresh tokens feed the rotation, where each
    # answer's new refresh token is presented next.
    interaction=$(curl -fs -o /dev/null -w '%{redirect_url}' -H "$csrf_cookie" "$authorize" | sed 's/.*interaction=//')
    session=$(curl -fs -o /dev/null -D - -H "$csrf_cookie" -d "csrf_token=$csrf" -d "interaction=$interaction" \
        -d username=bench -d "password=$password" "$issuer/login" |
        sed -n 's/^[Ss]et-[Cc]ookie: \(tessera_session=[^;]*\).*/\1/p')
    measure authorize_sso "$authorize" "$flows" collect '[?&]code=([^&]+)' "$work/codes" "Cookie: $session"
    cat "$work"/codes.* >"$work/codes"
    measure code_exchange "$issuer/token" "$flows" exchange "$work/codes" "$work/refresh" \
        "grant_type=authorization_code&redirect_uri=$callback&code_verifier=$verifier" "$web_auth" "$form"
    cat "$work"/refresh.* >"$work/refresh"
    measure refresh_rotation "$issuer/token" "$flows" refresh "$work/refresh" "grant_type=refresh_token" \
        "$web_auth" "$form"
fi

if selected password_login; then
    # Sign-ins waiting at the password step, then the login POST of each, once, while a light
    # probe times JWKS requests beside it.
    measure authorize_start "$authorize" "$flows" collect 'interaction=([^&]+)' "$work/sign-ins" "$csrf_cookie"
    cat "$work"/sign-ins.* >"$work/sign-ins"
    # The limit is measured on a quiet machine: the writes of the scenarios before still reach
    # the disk for a while, and would lower it.
    sync
    sleep 2
    limit=$(cargo run --release --locked --quiet --example argon2_rate)
    probe_jwks "${DURATION%s}" >"$work/jwks-p99" &
    probe=$!
    measure password_login "$issuer/login" "$flows" login "$work/sign-ins" \
        "username=bench&password=$password&csrf_token=$csrf" "$csrf_cookie" "$form"
    wait "$probe"
    python3 - "$(cat "$work/rate")" "$limit" "$(cat "$work/jwks-p99")" <<'PY'
import sys
logins, limit, jwks_p99 = (float(value) for value in sys.argv[1:])
print(f"\nargon2 limit on this machine: {limit:.1f} verifications/s; password_login reached "
      f"{logins:.1f}/s = {100 * logins / limit:.0f} % of it; JWKS p99 during the logins: {jwks_p99:.2f} ms")
PY
fi
