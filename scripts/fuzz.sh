#!/usr/bin/env bash
# Runs every fuzz target of fuzz/ for a bounded time: `scripts/fuzz.sh [seconds]` (30 by
# default; scripts/test.sh runs it so in CI). Builds all targets once (nightly, cargo-fuzz,
# AddressSanitizer; under target/fuzz), then runs each on a copy of its committed seed
# corpus, so the committed corpus never grows here. Fails when a target finds a crash (a
# panic, an overflow, a sanitizer report, an input slower than 10 s, more than 2 GiB);
# the input is kept under target/fuzz/artifacts/<target>/. docs/FUZZING.md has the rest.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -d "$HOME/.cargo/bin" ] && export PATH="$HOME/.cargo/bin:$PATH"

seconds="${1:-30}"
case "$seconds" in
    '' | *[!0-9]*) echo "usage: $0 [seconds per target]" >&2; exit 2 ;;
esac
# Every core builds (this runs after the tests, alone): with one job the build was 19 of
# the run's minutes on a two-core machine. CARGO_BUILD_JOBS still overrides.
export CARGO_BUILD_JOBS="${CARGO_BUILD_JOBS:-$(nproc)}"
target_dir="$PWD/target/fuzz"

start=$SECONDS
echo "fuzz: building every target"
# The lock file is committed: refuse to change it (cargo fuzz build has no --locked).
cargo +nightly fetch --locked --manifest-path fuzz/Cargo.toml
# 16 codegen units instead of cargo-fuzz's 1: the build is most of this script's time, and
# two cores split it; a 30 s smoke run does not need the last few percent of speed.
cargo +nightly fuzz build -O --codegen-units 16 --fuzz-dir fuzz --target-dir "$target_dir"
echo "fuzz: built in $((SECONDS - start)) s"

host=$(rustc +nightly -vV | sed -n 's/^host: //p')
bin_dir="$target_dir/$host/release"
mapfile -t targets < <(cargo +nightly fuzz list --fuzz-dir fuzz)
if [ "${#targets[@]}" = 0 ]; then
    echo "fuzz: no targets listed by cargo fuzz list" >&2
    exit 1
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# Leaks, overflows and use-after-free end the run; ODR reports from Rust's duplicated
# symbols are noise (cargo fuzz run sets the same).
export ASAN_OPTIONS="detect_odr_violation=0"

failed=()
summary=()
for t in "${targets[@]}"; do
    corpus="$work/corpus/$t"
    mkdir -p "$corpus" "$target_dir/artifacts/$t"
    if [ -d "fuzz/corpus/$t" ]; then
        cp -R "fuzz/corpus/$t/." "$corpus/"
    fi
    args=(-max_total_time="$seconds" -rss_limit_mb=2048 -timeout=10
        -artifact_prefix="$target_dir/artifacts/$t/" -print_final_stats=1)
    # A target's dictionary: fuzz/dicts/<target>.dict, or the one of its family
    # (http_request and http_response share http.dict).
    for dict in "fuzz/dicts/$t.dict" "fuzz/dicts/${t%%_*}.dict"; do
        if [ -f "$dict" ]; then
            args+=(-dict="$dict")
            break
        fi
    done
    log="$work/$t.log"
    t_start=$SECONDS
    status=0
    # libFuzzer stops itself at -max_total_time; the outer bound is for a target that hangs
    # in a way libFuzzer's own -timeout does not catch.
    timeout --kill-after=10 $((seconds + 120)) "$bin_dir/$t" "${args[@]}" "$corpus" >"$log" 2>&1 ||
        status=$?
    took=$((SECONDS - t_start))
    done_line=$(grep -E '^#[0-9]+[[:space:]]+DONE' "$log" | tail -n 1 || true)
    runs_line=$(grep -E '^Done [0-9]+ runs' "$log" | tail -n 1 || true)
    echo "fuzz: $t: ${took} s, exit $status"
    echo "   ${done_line:-no DONE line}"
    echo "   ${runs_line:-no run count}"
    # Figures for docs/FUZZING.md: execs, exec/s, coverage, corpus.
    execs=$(sed -nE 's/^#([0-9]+).*/\1/p' <<<"$done_line")
    rate=$(sed -nE 's/.*exec\/s: ([0-9]+).*/\1/p' <<<"$done_line")
    cov=$(sed -nE 's/.*cov: ([0-9]+).*/\1/p' <<<"$done_line")
    corp=$(sed -nE 's/.*corp: ([0-9]+\/[0-9]+[a-zA-Z]*).*/\1/p' <<<"$done_line")
    if [ "$status" != 0 ]; then
        failed+=("$t")
        summary+=("$t|$took|${execs:--}|${rate:--}|${cov:--}|${corp:--}|CRASH (exit $status)")
        echo "fuzz: $t FAILED:"
        # What failed (the panic or the sanitizer's report), then where the input went.
        grep -E -A4 'panicked at|==[0-9]+==ERROR|ERROR: libFuzzer|^SUMMARY' "$log" | head -n 40 | sed 's/^/   /' || true
        grep -E 'Test unit written|^Base64' "$log" | sed 's/^/   /' || true
    else
        summary+=("$t|$took|${execs:--}|${rate:--}|${cov:--}|${corp:--}|0")
    fi
done

echo "fuzz: summary ($seconds s per target)"
echo "| target | s | execs | exec/s | cov | corp | crashes |"
echo "|---|---|---|---|---|---|---|"
for row in "${summary[@]}"; do
    echo "| ${row//|/ | } |"
done
echo "fuzz: ${#targets[@]} targets in $((SECONDS - start)) s"
if [ "${#failed[@]}" -gt 0 ]; then
    echo "fuzz: crashes in: ${failed[*]} (inputs in $target_dir/artifacts/)" >&2
    exit 1
fi
