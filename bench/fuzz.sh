#!/usr/bin/env bash
# Coverage-guided fuzzing (libFuzzer through cargo-fuzz) of the parsers that take untrusted
# input: the victim list's query filters, report parameters, declarative report files, and bearer
# tokens. Each target runs for SECONDS (default 120); a crash leaves its input in
# fuzz/artifacts/<target>/ and fails the script.
#
#   bench/fuzz.sh                      # every target, 2 minutes each
#   SECONDS_PER_TARGET=600 bench/fuzz.sh jwt_verify
#
# The machine has one stable toolchain; RUSTC_BOOTSTRAP lets it take the sanitizer flags that
# cargo-fuzz passes. Not part of CI (it rebuilds everything instrumented: ~10 minutes).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
SECONDS_PER_TARGET=${SECONDS_PER_TARGET:-120}
export RUSTC_BOOTSTRAP=1
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
TARGETS=("$@")
((${#TARGETS[@]})) || TARGETS=(query_filters report_parameters declarative_plugin jwt_verify)

# Seeds: real inputs of each kind, so the fuzzer starts from the valid shapes.
seed() { mkdir -p "fuzz/corpus/$1"; printf '%s' "$3" > "fuzz/corpus/$1/$2"; }
seed query_filters full 'status=active&trafficking_status=actual&exploitation_type=forced_criminality&citizenship=PER&country_of_exploitation=SEN&operation=OP-1&identified_from=2026-01-01&identified_to=2026-12-31&updated_since=2026-11-01T00:00:00Z&limit=50'
seed query_filters cursor 'limit=200&cursor=eyJpZCI6IjAxOWFiYyJ9'
seed report_parameters window 'from=2025-01&to=2026-06&operation=OP-SENTINEL-2026&format=csv'
seed report_parameters own 'by=region&period=quarter&age=bands'
seed jwt_verify shaped 'eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCIsImtpZCI6ImsxIn0.eyJzdWIiOiIwMTlhIiwiZXhwIjo5OTk5OTk5OTk5fQ.c2lnbmF0dXJl'
seed jwt_verify none_alg 'eyJhbGciOiJub25lIiwia2lkIjoiazEifQ.eyJzdWIiOiJ4In0.'
for f in reports/*.toml; do seed declarative_plugin "$(basename "$f")" "$(cat "$f")"; done

status=0
for target in "${TARGETS[@]}"; do
    echo "== fuzzing $target for ${SECONDS_PER_TARGET}s"
    if ! (cd fuzz && cargo fuzz run "$target" -- -max_total_time="$SECONDS_PER_TARGET" -rss_limit_mb=4096 -print_final_stats=1 2>&1 | grep -v "^INFO\|^#[0-9]" | tail -40); then
        echo "!! $target found a crash: see fuzz/artifacts/$target/"
        status=1
    fi
done
exit $status
