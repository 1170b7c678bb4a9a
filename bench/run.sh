#!/usr/bin/env bash
# The benchmark: one command. Seeds a private cluster with `haven seed`, starts a release build of
# Haven on loopback, runs every scenario alternating with its pgbench anchor, prints the table and
# writes it into docs/BENCHMARKS.md (between its markers).
#
#   bench/run.sh                                   # 1,000,000 victims; 30 to 60 minutes
#   (the seed alone takes 4 to 15; a fresh checkout first builds the release and installs postrust)
#   VICTIMS=50000 DURATION=3 ROUNDS=2 OUT= bench/run.sh   # a quick look; writes nothing
#
# Installs what it needs from Debian's packages when missing (wrk; pgbench and psql come with
# postgresql). Touches nothing outside a temporary directory, which it removes at the end.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
VICTIMS=${VICTIMS:-1000000}
DURATION=${DURATION:-5}
ROUNDS=${ROUNDS:-3}
CONNECTIONS=${CONNECTIONS:-4}
OUT=${OUT-docs/BENCHMARKS.md}
COMMAND="VICTIMS=$VICTIMS DURATION=$DURATION ROUNDS=$ROUNDS CONNECTIONS=$CONNECTIONS bench/run.sh"

need=()
command -v wrk >/dev/null || need+=(wrk)
command -v pgbench >/dev/null || need+=(postgresql postgresql-contrib)
if ((${#need[@]})); then
    echo "== installing ${need[*]}"
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${need[@]}" >/dev/null
fi

# The benchmark build: the release profile plus the unauthenticated twin of the catalogue that the
# authentication figure compares against (never in a release build).
cargo build --release --locked -q --features benchmark-twin
BIN=target/release/haven
# The peer measured beside Haven: postrust, a PostgREST-compatible server, from crates.io, kept in
# target/ between runs. Not --locked: its lock file names a webpki-roots this registry mirror lacks.
PEER=target/bench-tools/bin/postrust
if [ ! -x "$PEER" ]; then
    echo "== installing postrust-server 3.1.0 (the peer; once)"
    cargo install -q postrust-server --version 3.1.0 --root target/bench-tools
fi
# Authentication counted in instructions (the repeatable measure of its overhead: D137), before
# anything else runs; its own small cluster and port.
echo "== authentication in instructions (callgrind)"
AUTH_INSTRUCTIONS=$(bench/auth_instructions.sh | tee -a /dev/stderr | tail -1)  # -a: a log file given as stderr is not truncated
export HAVEN_DATA_DIR=${HAVEN_DATA_DIR:-$(mktemp -d /tmp/haven-bench.XXXX)}
export HAVEN_LOG=warn HAVEN_BIND=${HAVEN_BIND:-127.0.0.1:8391}
export HAVEN_BOOTSTRAP_PASSWORD=benchmark-admin-passphrase
unset DATABASE_URL
chmod 711 "$HAVEN_DATA_DIR"
cleanup() { [ -n "${SERVER:-}" ] && kill "$SERVER" 2>/dev/null; wait 2>/dev/null || true; rm -rf "$HAVEN_DATA_DIR"; }
trap cleanup EXIT

echo "== seeding $VICTIMS victims"
start=$(date +%s)
"$BIN" seed --victims "$VICTIMS"
SEED_SECONDS=$(($(date +%s) - start))
"$BIN" bootstrap --org "Benchmark host" --email bench@haven.invalid >/dev/null
# The second person who approves caseworker access (docs/DECISIONS.md D76).
"$BIN" bootstrap --email bench-second@haven.invalid >/dev/null
echo "== starting Haven (release)"
# Allowances large enough for the thousands of new releases the report scenarios make.
HAVEN_BENCHMARK_TWIN=1 HAVEN_DP_ALLOWANCE=1000000000 HAVEN_DP_CAP=1000000000 "$BIN" serve >"$HAVEN_DATA_DIR/haven.log" 2>&1 &
SERVER=$!
for _ in $(seq 1 300); do curl -sf "http://$HAVEN_BIND/readyz" >/dev/null && break; sleep 0.2; done
python3 bench/bench.py --bind "$HAVEN_BIND" --socket "$HAVEN_DATA_DIR/pg/run" --pid "$SERVER" \
    --duration "$DURATION" --rounds "$ROUNDS" --connections "$CONNECTIONS" --victims "$VICTIMS" \
    --seed-seconds "$SEED_SECONDS" --command "$COMMAND" --peer "$PEER" ${OUT:+--out "$OUT"} \
    --auth-instructions "$AUTH_INSTRUCTIONS"
