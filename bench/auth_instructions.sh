#!/usr/bin/env bash
# What authentication costs a request, in instructions: repeatable where throughput is not (this
# machine's speed swings 2x, and the overhead sought is a few percent). Runs the benchmark build
# under valgrind's callgrind, then counts the instructions Haven executes for N partner requests
# of `GET /api/v1/reports` with a bearer token and for N to its unauthenticated twin (the same
# handler, route and bytes; docs/BENCHMARKS.md), and prints both per request and the difference.
#
#   bench/auth_instructions.sh            # N=2000, RUNS=5; two minutes after the benchmark build
#
# Each run is a fresh process on a fresh cluster. Between runs the difference moves by a few
# hundred instructions per request (one process to the next: hash seeds, memory layout), so the
# script prints every run and their median. Counts exclude the kernel (sockets, scheduling), so the
# overhead in throughput is smaller than the overhead in instructions; the figure tells whether a
# change to authentication helped.
set -euo pipefail
SELF=$(realpath "${BASH_SOURCE[0]}")
cd "$(dirname "$SELF")/.."
N=${N:-2000}
command -v valgrind >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends valgrind >/dev/null
RUNS=${RUNS:-5}
if [ "$RUNS" -gt 1 ]; then
    cargo build --release --locked -q --features benchmark-twin
    for _ in $(seq 1 "$RUNS"); do RUNS=1 BUILT=1 "$SELF" | tail -1; done | python3 -c '
import re, statistics, sys
runs = []
for line in sys.stdin:
    print(line, end="")
    runs.append([int(n) for n in re.findall(r"(\d+) (?:with|unauthenticated)", line)])
on, off = (statistics.median(r[i] for r in runs) for i in (0, 1))
auth = statistics.median(r[0] - r[1] for r in runs)
print(f"median of {len(runs)}: {on:.0f} with a bearer token, {off:.0f} unauthenticated twin;",
      f"authentication {auth:.0f} ({auth / off:.1%} of the twin\x27s)")'
    exit
fi
[ -n "${BUILT:-}" ] || cargo build --release --locked -q --features benchmark-twin
export HAVEN_DATA_DIR=$(mktemp -d /tmp/haven-auth.XXXX)
# No metrics listener: its fixed port would clash with a Haven already running on this machine.
export HAVEN_LOG=warn HAVEN_BIND=${HAVEN_BIND:-127.0.0.1:8393} HAVEN_BOOTSTRAP_PASSWORD=benchmark-admin-passphrase HAVEN_METRICS_BIND=off
unset DATABASE_URL
chmod 711 "$HAVEN_DATA_DIR"
cleanup() { [ -n "${SERVER:-}" ] && kill "$SERVER" 2>/dev/null; wait 2>/dev/null || true; rm -rf "$HAVEN_DATA_DIR"; }
trap cleanup EXIT
setup() { "$@" >>"$HAVEN_DATA_DIR/setup.log" 2>&1 || { cat "$HAVEN_DATA_DIR/setup.log" >&2; exit 1; }; }
setup target/release/haven seed --victims 2000
setup target/release/haven bootstrap --org "Benchmark host" --email bench@haven.invalid
# Background work that runs by the clock (the session memory's expiry, the webhook poll) would land
# in both windows, inflated by callgrind's slowdown: both run as seldom as the settings allow.
HAVEN_SESSION_CACHE_MS=5000 HAVEN_WEBHOOK_POLL_MS=60000 HAVEN_BENCHMARK_TWIN=1 valgrind --tool=callgrind --callgrind-out-file="$HAVEN_DATA_DIR/callgrind.%p" \
    target/release/haven serve >"$HAVEN_DATA_DIR/haven.log" 2>&1 &
SERVER=$!
for _ in $(seq 1 600); do curl -sf "http://$HAVEN_BIND/readyz" >/dev/null && break; kill -0 "$SERVER" 2>/dev/null || { cat "$HAVEN_DATA_DIR/haven.log" >&2; exit 1; }; sleep 0.5; done
python3 - "$HAVEN_BIND" "$N" "$SERVER" <<'PY'
import http.client, json, subprocess, sys
host, port = sys.argv[1].split(":"); n = int(sys.argv[2]); pid = sys.argv[3]
conn = http.client.HTTPConnection(host, int(port))
def call(method, path, token=None, body=None, headers=None):
    h = {"content-type": "application/json", **(headers or {})}
    if token:
        h["authorization"] = f"Bearer {token}"
    conn.request(method, path, body=json.dumps(body) if body is not None else None, headers=h)
    r = conn.getresponse(); data = r.read()
    if r.status not in (200, 201):
        raise SystemExit(f"{method} {path}: {r.status}")
    return json.loads(data or b"null")
login = lambda email, password: call("POST", "/api/v1/auth/login", body={"email": email, "password": password})["access_token"]
admin = login("bench@haven.invalid", "benchmark-admin-passphrase")
org = call("GET", "/api/v1/me", admin)["organization"]["id"]
created = call("POST", "/api/v1/users", admin, {"email": "partner@haven.invalid", "role": "partner", "organization_id": org})
call("POST", "/api/v1/auth/enrol", body={"token": created["enrolment"]["token"], "password": "benchmark-partner-passphrase"})
partner = login("partner@haven.invalid", "benchmark-partner-passphrase")
sides = {"with a bearer token": {"authorization": f"Bearer {partner}"}, "unauthenticated twin": {"x-haven-benchmark-twin": "1"}}
for name, headers in sides.items():
    for _ in range(100):  # warm: the token and the session remembered, the connection's statements prepared
        call("GET", "/api/v1/reports", headers=headers)
    subprocess.run(["callgrind_control", "--zero", pid], check=True, capture_output=True)
    for _ in range(n):
        call("GET", "/api/v1/reports", headers=headers)
    subprocess.run(["callgrind_control", "--dump=" + name, pid], check=True, capture_output=True)
PY
# The dump's own total line, not callgrind_annotate's listing.
count() {
    [ -s "$1" ] || { echo "no callgrind dump $1 (see $HAVEN_DATA_DIR/haven.log)" >&2; exit 1; }
    awk '/^(summary|totals):/ {print $2; exit}' "$1"
}
on=$(count "$HAVEN_DATA_DIR/callgrind.$SERVER.1")
off=$(count "$HAVEN_DATA_DIR/callgrind.$SERVER.2")
echo "instructions per request: $((on / N)) with a bearer token, $((off / N)) unauthenticated twin;" \
    "authentication $(((on - off) / N)) ($(python3 -c "print(f'{$on / $off - 1:.1%}')") of the twin's)"
