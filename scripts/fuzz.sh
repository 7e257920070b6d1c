#!/usr/bin/env bash
# The fuzz targets of fuzz/ (docs/reliability.md, "Fuzzing").
#
#   scripts/fuzz.sh smoke            every target over its seeds and kept corpus, then 10 s of
#                                    fuzzing each (scripts/test.sh runs this)
#   scripts/fuzz.sh run TARGET SECS [LIBFUZZER OPTIONS]
#                                    one target for SECS seconds in one
#                                    process, its corpus growing in
#                                    $FUZZ_CORPUS/TARGET
#   scripts/fuzz.sh list             the targets
#   scripts/fuzz.sh keep             minimizes each target's grown corpus
#                                    with what fuzz/corpus holds into
#                                    fuzz/corpus/TARGET (libFuzzer -merge=1)
#
# cargo-fuzz is installed from crates.io when missing. The targets build
# with the stable toolchain and `--sanitizer none` (libFuzzer's coverage
# instrumentation without AddressSanitizer, which needs nightly): the code
# under test is safe Rust, so what fuzzing can find is a panic, an overflow
# (debug assertions are on), a hang or unbounded memory, all of which
# libFuzzer reports without a sanitizer. The build goes to
# $FUZZ_TARGET_DIR (default: $CARGO_TARGET_DIR/fuzz).
set -euo pipefail
cd "$(dirname "$0")/.."

CARGO_FUZZ_VERSION=0.13.2
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/tributary/target}"
FUZZ_TARGET_DIR="${FUZZ_TARGET_DIR:-$CARGO_TARGET_DIR/fuzz}"
FUZZ_CORPUS="${FUZZ_CORPUS:-$FUZZ_TARGET_DIR/corpus}"

log() { echo "fuzz: $*" >&2; }
# The same flags for every build and run, so runs reuse the build. 16
# codegen units instead of cargo-fuzz's 1: wasmtime and Cranelift (linked
# through the WIT conversion's types) build in a fraction of the time, for
# somewhat slower runs.
BUILD=(--fuzz-dir fuzz --sanitizer none --codegen-units 16 --target-dir "$FUZZ_TARGET_DIR")

if ! cargo fuzz --version >/dev/null 2>&1; then
  log "installing cargo-fuzz $CARGO_FUZZ_VERSION from crates.io"
  cargo install --locked cargo-fuzz --version "$CARGO_FUZZ_VERSION" >&2
fi

targets() { cargo fuzz list --fuzz-dir fuzz; }

# One libFuzzer run of $1 with the options after it; new inputs go to $corpus.
fuzz_run() {
  local target="$1"; shift
  local corpus="$FUZZ_CORPUS/$target"
  mkdir -p "$corpus" "$FUZZ_TARGET_DIR/artifacts/$target"
  # New inputs go to the first folder; the seeds and the corpus kept in the
  # repository (fuzz/corpus, minimized after each round) are read only.
  local kept=()
  [ -d "fuzz/corpus/$target" ] && kept=("fuzz/corpus/$target")
  cargo fuzz run "${BUILD[@]}" "$target" \
    "$corpus" "fuzz/seeds/$target" "${kept[@]}" -- \
    -artifact_prefix="$FUZZ_TARGET_DIR/artifacts/$target/" \
    -rss_limit_mb=2048 -timeout=10 -max_len=65536 "$@" </dev/null
}

case "${1:-}" in
  list) targets ;;
  smoke)
    cargo fuzz build "${BUILD[@]}" >&2
    passed=0 failed=0
    for t in $(targets); do
      out="$FUZZ_TARGET_DIR/smoke-$t.log"
      if fuzz_run "$t" -max_total_time=10 >"$out" 2>&1; then
        passed=$((passed + 1))
        echo "fuzz $t ... ok ($(grep -Eo '^Done [0-9]+ runs' "$out" | cut -d' ' -f2) runs)"
      else
        failed=$((failed + 1))
        echo "fuzz $t ... FAILED"
        tail -40 "$out"
      fi
    done
    # In cargo's words, for the totals scripts/test.sh prints.
    echo "test result: $([ "$failed" = 0 ] && echo ok || echo FAILED). $passed passed; $failed failed; 0 ignored (fuzz smoke)"
    [ "$failed" = 0 ]
    ;;
  keep)
    cargo fuzz build "${BUILD[@]}" >&2
    for t in $(targets); do
      bin="$FUZZ_TARGET_DIR/x86_64-unknown-linux-gnu/release/$t"
      merged="$(mktemp -d)"
      mkdir -p "$FUZZ_CORPUS/$t" "fuzz/corpus/$t"
      "$bin" -merge=1 -rss_limit_mb=2048 -max_len=65536 "$merged" \
        "fuzz/corpus/$t" "$FUZZ_CORPUS/$t" "fuzz/seeds/$t" >"$FUZZ_TARGET_DIR/keep-$t.log" 2>&1
      rm -rf "fuzz/corpus/$t" && mv "$merged" "fuzz/corpus/$t"
      echo "fuzz $t: $(ls "fuzz/corpus/$t" | wc -l) inputs kept"
    done
    ;;
  run)
    [ $# -ge 3 ] || { echo "usage: $0 run TARGET SECONDS [LIBFUZZER OPTIONS]" >&2; exit 2; }
    target="$2" secs="$3"; shift 3
    fuzz_run "$target" -max_total_time="$secs" -print_final_stats=1 "$@"
    ;;
  *) sed -n '2,21p' "$0" >&2; exit 2 ;;
esac
