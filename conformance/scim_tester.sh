#!/usr/bin/env bash
# SCIM 2.0 conformance: runs scim2-tester, through the `test` command of scim2-cli, against the SCIM
# server of a running Tessera at $ISSUER/scim/v2. Both packages are pinned in requirements.txt and
# installed into conformance/.venv by run.sh.
#
# Environment:
#   ISSUER       base URL of the running Tessera (required); the SCIM base is $ISSUER/scim/v2
#   SCIM_TOKEN   bearer access token with scope `scim` (required); it is handed to scim2-cli through
#                its SCIM_CLI_HEADERS variable, never on a command line
#   SCIM_TESTER_VENV       virtualenv holding scim2-cli (default: conformance/.venv)
#   SCIM_TESTER_MIN_CHECKS fewest checks a passing run must report (default: 10)
#   SCIM_TESTER_TIMEOUT    seconds before the run is killed (default: 300)
#   SCIM_TESTER_VERBOSE=1  passes --verbose to `scim2 test` (prints the data of every check: long)
#   SCIM_TESTER_RAW=FILE   also keeps the unprocessed scim2-cli output in FILE
#
# Output: one line per check, `PASS [scim] <check> -- <reason>` for a SUCCESS and
# `FAIL [scim] <check> -- <STATUS>: <reason>` for any other status (ERROR, CRITICAL, SKIPPED,
# DEVIATION, ACCEPTABLE, COMPLIANT), multi-line reasons folded onto one line with ` | `. The last line
# is `scim2-tester: N passed, M failed`. The exit status is 0 only when scim2-cli exited 0, every
# check reported SUCCESS, at least SCIM_TESTER_MIN_CHECKS checks ran, and the CRUD checks ran.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
VENV="${SCIM_TESTER_VENV:-$HERE/.venv}"
MIN_CHECKS="${SCIM_TESTER_MIN_CHECKS:-10}"
TIMEOUT="${SCIM_TESTER_TIMEOUT:-300}"

die() {
    echo "FAIL [scim] scim2-tester did not run -- $*"
    echo "scim2-tester: 0 passed, 1 failed"
    exit 1
}

[ -n "${ISSUER:-}" ] || die "ISSUER is not set"
[ -n "${SCIM_TOKEN:-}" ] || die "SCIM_TOKEN is not set"
case "$SCIM_TOKEN" in
    *';'* | *$'\n'* | *$'\r'*) die "SCIM_TOKEN holds a character SCIM_CLI_HEADERS cannot carry" ;;
esac
[ -x "$VENV/bin/scim2" ] || die "no scim2 in $VENV/bin (install requirements.txt into $VENV)"
[ -x "$VENV/bin/python" ] || die "no python in $VENV/bin"

SCIM_URL="${ISSUER%/}/scim/v2"
RAW="$(mktemp "${TMPDIR:-/tmp}/scim-tester.XXXXXX")"
trap 'rm -f "$RAW"' EXIT

verbose=()
[ "${SCIM_TESTER_VERBOSE:-}" = "1" ] && verbose=(--verbose)

# The SCIM_CLI_* variables scim2-cli reads: the header carries the token; the others are cleared so
# that the schemas, resource types and configuration are always discovered from the server.
rc=0
env -u SCIM_CLI_URL -u SCIM_CLI_SCHEMAS -u SCIM_CLI_RESOURCE_TYPES -u SCIM_CLI_SERVICE_PROVIDER_CONFIG \
    SCIM_CLI_HEADERS="Authorization: Bearer $SCIM_TOKEN" NO_COLOR=1 \
    timeout "$TIMEOUT" "$VENV/bin/scim2" --url "$SCIM_URL" test "${verbose[@]}" >"$RAW" 2>&1 || rc=$?

if [ -n "${SCIM_TESTER_RAW:-}" ]; then
    cp "$RAW" "$SCIM_TESTER_RAW"
fi

# `scim2 test` prints `<STATUS> <check_name>` for every check, then the reason (first line indented by
# two spaces, further lines as they come) when there is one. It exits 1 when any status is not
# SUCCESS, and when discovery fails before any check (`Error: Could not discover the server …`).
"$VENV/bin/python" - "$RAW" "$rc" "$MIN_CHECKS" "$TIMEOUT" <<'PY'
import re
import sys

raw_path, rc, min_checks, timeout = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
text = re.sub(r"\x1b\[[0-9;]*[A-Za-z]", "", open(raw_path, encoding="utf-8", errors="replace").read())
STATUSES = "SUCCESS|COMPLIANT|ACCEPTABLE|DEVIATION|ERROR|CRITICAL|SKIPPED"
head = re.compile(rf"^({STATUSES}) ([A-Za-z_][A-Za-z0-9_]*)$")

checks = []  # [status, title, reason lines]
preamble = []
for line in text.splitlines():
    m = head.match(line)
    if m:
        checks.append([m.group(1), m.group(2), []])
    elif checks:
        if line.strip():
            checks[-1][2].append(line.strip())
    elif line.strip() and not line.startswith("Performing a SCIM compliance check"):
        preamble.append(line.strip())

passed = failed = 0
for status, title, reason in checks:
    why = " | ".join(reason)
    if status == "SUCCESS":
        passed += 1
        print(f"PASS [scim] {title}" + (f" -- {why}" if why else ""))
    else:
        failed += 1
        print(f"FAIL [scim] {title} -- {status}" + (f": {why}" if why else ""))

extra = []
if rc == 124:
    extra.append(f"scim2 test timed out after {timeout}s")
elif rc != 0 and failed == 0:
    extra.append(f"scim2 test exited {rc}: " + (" | ".join(preamble) or "no output"))
if len(checks) < min_checks:
    extra.append(f"only {len(checks)} checks ran, fewer than {min_checks}")
if not any(title == "object_creation" for _, title, _ in checks):
    extra.append("no resource CRUD check ran (discovery found no usable resource type)")
for why in extra:
    failed += 1
    print(f"FAIL [scim] scim2-tester run -- {why}")

print(f"scim2-tester: {passed} passed, {failed} failed")
sys.exit(0 if failed == 0 and rc == 0 else 1)
PY
