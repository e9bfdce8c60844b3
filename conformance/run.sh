#!/usr/bin/env bash
# Relying-party conformance run: starts a real Tessera server on a free loopback port with a
# throw-away SQLite file, bootstraps a user and three clients with the CLI, then drives two
# third-party RP libraries against it: Python authlib (conformance/authlib_rp.py) and node
# openid-client v6 (conformance/node/rp.mjs), then scim2-tester against the SCIM API
# (conformance/scim_tester.sh). Every check prints PASS/FAIL; the last line is
# `conformance: N passed, M failed`, and the exit status is non-zero when M > 0.
#
# Environment: TESSERA_BIN (default ${CARGO_TARGET_DIR:-$HOME/.cache/tessera/target}/debug/tessera),
# CONFORMANCE_ONLY=py|node to run one RP, CONFORMANCE_KEEP=1 to keep the temp dir (server log).
set -uo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/tessera/target}"
TESSERA_BIN="${TESSERA_BIN:-$TARGET_DIR/debug/tessera}"
ONLY="${CONFORMANCE_ONLY:-}"
RP_TIMEOUT="${CONFORMANCE_RP_TIMEOUT:-120}"

die() {
    echo "conformance: $*" >&2
    echo "conformance: 0 passed, 1 failed"
    exit 1
}

[ -x "$TESSERA_BIN" ] || die "no tessera binary at $TESSERA_BIN (build it first: cargo build, or set TESSERA_BIN)"
command -v python3 >/dev/null || die "python3 is required"
if [ "$ONLY" != "py" ]; then
    command -v node >/dev/null && command -v npm >/dev/null || die "node and npm are required"
fi

# ---------------------------------------------------------------------------------------------
# Dependencies (skipped when already installed for the same pinned versions)

install_python() {
    local venv="$HERE/.venv" stamp="$HERE/.venv/.requirements.sha256" want
    want="$(sha256sum "$HERE/requirements.txt" | cut -d' ' -f1)"
    if [ -x "$venv/bin/python" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$want" ]; then
        return 0
    fi
    echo "conformance: installing Python dependencies into $venv" >&2
    if [ ! -x "$venv/bin/python" ]; then
        python3 -m venv "$venv" || return 1
    fi
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$HERE/requirements.txt" >&2 \
        || return 1
    echo "$want" >"$stamp"
}

install_node() {
    local dir="$HERE/node" stamp="$HERE/node/node_modules/.package-lock.sha256" want
    want="$(cat "$dir/package.json" "$dir/package-lock.json" 2>/dev/null | sha256sum | cut -d' ' -f1)"
    if [ -d "$dir/node_modules/openid-client" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$want" ]; then
        return 0
    fi
    echo "conformance: installing node dependencies into $dir/node_modules" >&2
    if [ -f "$dir/package-lock.json" ]; then
        (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error >&2) || return 1
    else
        (cd "$dir" && npm install --no-audit --no-fund --loglevel=error >&2) || return 1
    fi
    want="$(cat "$dir/package.json" "$dir/package-lock.json" | sha256sum | cut -d' ' -f1)"
    echo "$want" >"$stamp"
}

if [ "$ONLY" != "node" ]; then
    install_python || die "installing the Python dependencies failed"
fi
if [ "$ONLY" != "py" ]; then
    install_node || die "installing the node dependencies failed"
fi
PY="$HERE/.venv/bin/python"
[ -x "$PY" ] || PY=python3   # only the port picker and health probe need it when ONLY=node

# ---------------------------------------------------------------------------------------------
# A server on a free port with its own database

WORK="$(mktemp -d "${TMPDIR:-/tmp}/tessera-conformance.XXXXXX")"
SERVER_PID=""
cleanup() {
    if [ -n "$SERVER_PID" ]; then
        kill "$SERVER_PID" 2>/dev/null
        wait "$SERVER_PID" 2>/dev/null
    fi
    if [ -n "${CONFORMANCE_KEEP:-}" ]; then
        echo "conformance: kept $WORK" >&2
    else
        rm -rf "$WORK"
    fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

PORT="$("$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
export TESSERA_ISSUER="http://127.0.0.1:$PORT"
export TESSERA_BIND="127.0.0.1:$PORT"
export DATABASE_URL="sqlite://$WORK/tessera.db?mode=rwc"
export TESSERA_LOG="${TESSERA_LOG:-warn}"
unset STORE_BACKEND REDIS_URL TESSERA_SEED_FILE

export TEST_USERNAME=ada TEST_PASSWORD="correct horse battery staple $$" TEST_EMAIL=ada@example.com \
    TEST_GIVEN_NAME=Ada TEST_FAMILY_NAME=Lovelace
export RP_REDIRECT_URI="http://127.0.0.1:9/callback"

TEST_USER_ID="$(printf '%s\n' "$TEST_PASSWORD" | "$TESSERA_BIN" user create --username "$TEST_USERNAME" \
    --email "$TEST_EMAIL" --given-name "$TEST_GIVEN_NAME" --family-name "$TEST_FAMILY_NAME" \
    --password-stdin 2>"$WORK/cli.err")" || die "tessera user create failed: $(cat "$WORK/cli.err")"
TEST_USER_ID="$(printf '%s' "$TEST_USER_ID" | tr -d '[:space:]')"
export TEST_USER_ID

# Prints "CLIENT_ID CLIENT_SECRET" from `client create --json`.
make_client() {
    local json
    json="$("$TESSERA_BIN" client create "$@" --json 2>"$WORK/cli.err")" || {
        echo "tessera client create $* failed: $(cat "$WORK/cli.err")" >&2
        return 1
    }
    printf '%s' "$json" | "$PY" -c 'import json, sys; c = json.load(sys.stdin); print(c["client_id"], c["client_secret"])'
}
RP_CLIENTS=(--redirect-uri "$RP_REDIRECT_URI" --grant authorization_code --grant refresh_token
    --scope "openid profile email offline_access account")
read -r PY_ID PY_SECRET < <(make_client --client-id py-rp "${RP_CLIENTS[@]}") || true
read -r NODE_ID NODE_SECRET < <(make_client --client-id node-rp "${RP_CLIENTS[@]}") || true
read -r OTHER_CLIENT_ID OTHER_CLIENT_SECRET < <(make_client --client-id other-rp "${RP_CLIENTS[@]}") || true
read -r RS_CLIENT_ID RS_CLIENT_SECRET < <(make_client --client-id rs --grant client_credentials --scope openid \
    --resource-server https://api.example/) || true
read -r SCIM_ID SCIM_SECRET < <(make_client --client-id scim-tester --grant client_credentials --scope scim) || true
[ -n "${PY_SECRET:-}" ] && [ -n "${NODE_SECRET:-}" ] && [ -n "${OTHER_CLIENT_SECRET:-}" ] \
    && [ -n "${RS_CLIENT_SECRET:-}" ] && [ -n "${SCIM_SECRET:-}" ] \
    || die "bootstrapping clients with the CLI failed"
export RS_CLIENT_ID RS_CLIENT_SECRET OTHER_CLIENT_ID OTHER_CLIENT_SECRET

"$TESSERA_BIN" serve >"$WORK/server.log" 2>&1 &
SERVER_PID=$!

ready=""
for _ in $(seq 1 150); do
    if ! kill -0 "$SERVER_PID" 2>/dev/null; then
        tail -n 20 "$WORK/server.log" >&2
        die "the server exited during start-up"
    fi
    if "$PY" -c 'import sys, urllib.request
try:
    sys.exit(0 if urllib.request.urlopen(sys.argv[1], timeout=1).status == 200 else 1)
except Exception:
    sys.exit(1)' "$TESSERA_ISSUER/healthz"; then
        ready=1
        break
    fi
    sleep 0.2
done
[ -n "$ready" ] || { tail -n 20 "$WORK/server.log" >&2; die "GET /healthz did not answer 200 within 30 s"; }
echo "conformance: tessera at $TESSERA_ISSUER (pid $SERVER_PID, log $WORK/server.log)" >&2

# ---------------------------------------------------------------------------------------------
# The relying parties

PASSED=0
FAILED=0
run_rp() {  # run_rp TAG CLIENT_ID CLIENT_SECRET COMMAND…
    local tag="$1" id="$2" secret="$3" out="$WORK/$1.out" rc p f
    shift 3
    RP_CLIENT_ID="$id" RP_CLIENT_SECRET="$secret" timeout "$RP_TIMEOUT" "$@" 2>"$WORK/$tag.err" | tee "$out"
    rc=${PIPESTATUS[0]}
    p=$(grep -c '^PASS ' "$out")
    f=$(grep -c '^FAIL ' "$out")
    PASSED=$((PASSED + p))
    FAILED=$((FAILED + f))
    if [ "$rc" -ne 0 ] || [ "$((p + f))" -eq 0 ]; then
        if [ "$rc" -eq 124 ]; then
            echo "FAIL [$tag] relying party timed out after ${RP_TIMEOUT}s; its stderr:"
        else
            echo "FAIL [$tag] relying party crashed (exit $rc) or ran no check; its stderr:"
        fi
        sed 's/^/    /' "$WORK/$tag.err" | tail -n 30
        FAILED=$((FAILED + 1))
    fi
}

export API_TOKEN_FILE="$WORK/api-token"
if [ "$ONLY" != "node" ]; then
    run_rp py "$PY_ID" "$PY_SECRET" "$PY" "$HERE/authlib_rp.py"
fi
if [ "$ONLY" != "py" ]; then
    run_rp node "$NODE_ID" "$NODE_SECRET" node "$HERE/node/rp.mjs"
fi

# The SCIM 2.0 server: scim2-tester through `scim2 test`, with a client_credentials token of scope
# scim. Every check must report SUCCESS.
if [ "$ONLY" != "node" ]; then
    SCIM_TOKEN="$(SCIM_ID="$SCIM_ID" SCIM_SECRET="$SCIM_SECRET" "$PY" -c '
import base64, json, os, sys, urllib.request
pair = os.environ["SCIM_ID"] + ":" + os.environ["SCIM_SECRET"]
basic = base64.b64encode(pair.encode()).decode()
request = urllib.request.Request(sys.argv[1] + "/token", data=b"grant_type=client_credentials&scope=scim",
                                 headers={"Authorization": "Basic " + basic})
print(json.load(urllib.request.urlopen(request, timeout=10))["access_token"])' "$TESSERA_ISSUER" 2>"$WORK/scim-token.err")"
    ISSUER="$TESSERA_ISSUER" SCIM_TOKEN="$SCIM_TOKEN" SCIM_TESTER_RAW="$WORK/scim.raw" \
        timeout "$RP_TIMEOUT" bash "$HERE/scim_tester.sh" >"$WORK/scim.out" 2>&1
    rc=$?
    cat "$WORK/scim.out"
    p=$(grep -c '^PASS ' "$WORK/scim.out")
    f=$(grep -c '^FAIL ' "$WORK/scim.out")
    [ "$rc" -ne 0 ] && [ "$f" -eq 0 ] && f=1
    PASSED=$((PASSED + p))
    FAILED=$((FAILED + f))
fi

# The self-service API against its own OpenAPI document: schemathesis generates requests from
# the document (the bearer token from the py run) and checks every answer against it (status
# codes, content types, response schemas, invalid input refused) and that none is a server
# error. Left out: that every schema-valid request is accepted, since the password rule (length,
# a breached-password list) and the refusal of control characters are not JSON Schema. It runs
# last: it changes the test user's profile.
if [ "$ONLY" != "node" ]; then
    if [ -s "$API_TOKEN_FILE" ]; then
        # From the temp dir: schemathesis keeps a cache (`.schemathesis/`) where it runs.
        (cd "$WORK" && timeout "$RP_TIMEOUT" "$HERE/.venv/bin/st" run \
            "$TESSERA_ISSUER/api/v1/openapi.json" \
            -H "Authorization: Bearer $(cat "$API_TOKEN_FILE")" --checks all \
            --exclude-checks positive_data_acceptance \
            --max-examples 25 --seed 1 --no-color) >"$WORK/api.out" 2>&1
        rc=$?
    else
        echo "no API token from the py run" >"$WORK/api.out"
        rc=1
    fi
    if [ "$rc" -eq 0 ]; then
        echo "PASS [api] schemathesis: every answer of /api/v1 matches its OpenAPI document"
        PASSED=$((PASSED + 1))
    else
        echo "FAIL [api] schemathesis (exit $rc):"
        sed 's/^/    /' "$WORK/api.out" | tail -n 120
        FAILED=$((FAILED + 1))
    fi
fi

if ! kill -0 "$SERVER_PID" 2>/dev/null; then
    echo "FAIL [server] tessera exited during the run; last log lines:"
    tail -n 20 "$WORK/server.log" | sed 's/^/    /'
    FAILED=$((FAILED + 1))
fi

echo "conformance: $PASSED passed, $FAILED failed"
[ "$FAILED" -eq 0 ]
