#!/usr/bin/env bash
# Report latency through the API next to the same rollup query run directly in PostgreSQL, in the
# same run on the same machine (absolute speed here varies 2x; compare the ratio).
#
#   bench/reports.sh                 # 1,000,000 victims, release build
#   VICTIMS=100000 RUNS=10 bench/reports.sh
#
# It seeds a private cluster in a temporary directory (nothing else is touched), starts Haven on
# 127.0.0.1:8391, and removes everything when done.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
VICTIMS=${VICTIMS:-1000000}
RUNS=${RUNS:-20}
PROFILE=${PROFILE:-release}
export HAVEN_DATA_DIR=${HAVEN_DATA_DIR:-$(mktemp -d /tmp/hb.XXXX)}
export HAVEN_LOG=warn HAVEN_BIND=127.0.0.1:8391
export HAVEN_BOOTSTRAP_PASSWORD=benchmark-admin-passphrase
unset DATABASE_URL
if [ "$PROFILE" = release ]; then cargo build --release --locked -q; BIN=target/release/haven; else cargo build -q; BIN=target/debug/haven; fi
chmod 711 "$HAVEN_DATA_DIR"
cleanup() { [ -n "${SERVER:-}" ] && kill "$SERVER" 2>/dev/null; wait 2>/dev/null || true; rm -rf "$HAVEN_DATA_DIR"; }
trap cleanup EXIT
echo "== seeding $VICTIMS victims"
start=$(date +%s.%N)
"$BIN" seed --victims "$VICTIMS"
python3 -c "import sys; print(f\"seed took {float(sys.argv[2]) - float(sys.argv[1]):.1f} s\")" "$start" "$(date +%s.%N)"
"$BIN" bootstrap --org "Benchmark host" --email bench@haven.invalid >/dev/null
echo "== starting Haven"
# Generous budget: the benchmark makes many releases.
HAVEN_DP_BUDGET=100000 "$BIN" serve >/dev/null 2>&1 &
SERVER=$!
for _ in $(seq 1 100); do curl -sf "http://$HAVEN_BIND/readyz" >/dev/null && break; sleep 0.2; done
python3 bench/reports.py "$HAVEN_BIND" "$HAVEN_DATA_DIR/pg/run" "$RUNS" "$VICTIMS"
