#!/usr/bin/env bash
# The utility benchmark: how close partners' statistics are to the truth at the default settings.
# Seeds 4,400 victims in 12 organisations (the scale of one multi-country operation) into a
# private cluster, asks every report at its default parameters from several partner
# organisations (each answer a separate release), and compares every released cell with the
# exact count of the same population. Prints the table and writes it into docs/BENCHMARKS.md.
#
#   bench/utility.sh                     # 4,400 victims, 12 organisations, 5 releases per report
#   VICTIMS=20000 DRAWS=3 OUT= bench/utility.sh   # another scale; writes nothing
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
VICTIMS=${VICTIMS:-4400}
ORGS=${ORGS:-12}
DRAWS=${DRAWS:-5}
OUT=${OUT-docs/BENCHMARKS.md}

cargo build --release --locked -q
BIN=target/release/haven
export HAVEN_DATA_DIR=${HAVEN_DATA_DIR:-$(mktemp -d /tmp/haven-utility.XXXX)}
export HAVEN_LOG=warn HAVEN_BIND=${HAVEN_BIND:-127.0.0.1:8392}
export HAVEN_BOOTSTRAP_PASSWORD=utility-admin-passphrase
unset DATABASE_URL
chmod 711 "$HAVEN_DATA_DIR"
cleanup() { [ -n "${SERVER:-}" ] && kill "$SERVER" 2>/dev/null; wait 2>/dev/null || true; rm -rf "$HAVEN_DATA_DIR"; }
trap cleanup EXIT

"$BIN" seed --victims "$VICTIMS" --organizations "$ORGS"
"$BIN" bootstrap --org "Utility host" --email utility@haven.invalid >/dev/null
# The deployment's default privacy settings: nothing about noise or budgets is set here.
"$BIN" serve >"$HAVEN_DATA_DIR/haven.log" 2>&1 &
SERVER=$!
for _ in $(seq 1 300); do curl -sf "http://$HAVEN_BIND/readyz" >/dev/null && break; sleep 0.2; done
python3 bench/utility.py --bind "$HAVEN_BIND" --socket "$HAVEN_DATA_DIR/pg/run" --draws "$DRAWS" \
    --victims "$VICTIMS" --organizations "$ORGS" ${OUT:+--out "$OUT"}
