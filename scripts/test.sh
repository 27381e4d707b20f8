#!/usr/bin/env bash
# The one command that checks sb: installs missing test peers, then runs formatting, lints,
# every test (including the parity suite against the real Go sing-box binary) and the docs.
# Each phase prints how long it took, so a slow suite shows up in CI's log.
set -euo pipefail
cd "$(dirname "$0")/.."
# CI builds a clean checkout once: incremental state would only cost disk (5.5 GiB in
# target/debug/incremental on 2026-12-05). A developer's own setting wins.
if [ -n "${CI:-}" ]; then export CARGO_INCREMENTAL="${CARGO_INCREMENTAL:-0}"; fi
# rustup installs into ~/.cargo/bin, which a non-login shell may not have on PATH.
[ -d "$HOME/.cargo/bin" ] && export PATH="$HOME/.cargo/bin:$PATH"

phase_start=$SECONDS
phase() {
    # Disk too: CI's disk is finite and the build directories are most of what fills it.
    local used free
    # Best effort (a directory not built yet makes du fail): never a reason to stop.
    used=$(du -sh target fuzz/target 2>/dev/null | awk '{printf "%s%s %s", sep, $2, $1; sep=", "}') || true
    free=$(df -h --output=avail . 2>/dev/null | tail -n 1 | tr -d ' ') || true
    echo "   (took $((SECONDS - phase_start)) s; ${used:-no build dirs yet}; $free free)"
    phase_start=$SECONDS
    echo "== $*"
}

echo "== install test dependencies"
./scripts/install-test-deps.sh

phase "cargo fmt --check"
cargo fmt --all -- --check
# The fuzz targets are a workspace of their own (fuzz/).
cargo fmt --manifest-path fuzz/Cargo.toml -- --check
phase "cargo clippy (all targets, all features, -D warnings)"
cargo clippy --workspace --all-targets --all-features --locked -- -D warnings
phase "without default features: the adapters behind cargo features stay optional"
# sb-adapters alone (its dev-dependencies do not turn the features back on) and the sb
# binary; the registry's tests then see the left-out types refused by feature name.
cargo clippy -p sb-adapters --no-default-features --all-targets --locked -- -D warnings
# The binary without its optional parts, and its refusal of a config that needs the API.
cargo test -p sb-cli --no-default-features --bins --locked clash
cargo test -p sb-adapters --no-default-features --lib --locked registry
phase "vendored crates' own tests (third_party/netstack-smoltcp, third_party/smoltcp)"
# Not workspace members (their style is upstream's), so cargo test --workspace skips them.
cargo test --locked --manifest-path third_party/netstack-smoltcp/Cargo.toml --target-dir target
# smoltcp's library tests, with the congestion control the stack uses (Reno: sb's patch).
cargo test --locked --manifest-path third_party/smoltcp/Cargo.toml --target-dir target \
    --features socket-tcp-reno --lib
phase "vendored crates' own tests (third_party/russh, with the features sb builds it with)"
# Skipped: upstream's test_contention races itself (its server answers the tcpip-forward
# request before it binds the port it then listens on, so on a busy machine the test's
# first connect is refused); sb's patch is not involved.
cargo test --locked --manifest-path third_party/russh/Cargo.toml --target-dir target \
    --no-default-features --features ring,rsa --lib --tests -- --skip test_contention
phase "cargo test (workspace)"
# Tests that cannot run here (a missing peer, not root) say why in this file; under CI a
# skip is a failure instead. Listed at the end, where a developer sees them.
export SB_SKIP_LOG="$PWD/target/skipped-tests.txt"
mkdir -p target && : >"$SB_SKIP_LOG"
CI="${CI:-}" cargo test --workspace --all-features --locked
phase "benchmark harness (smoke mode: builds in release, runs every measurement briefly)"
# On the release build, as published figures are: a smoke run on the tests' debug build
# (tried on 2026-12-05 to save the release build's 15 minutes) once saw the in-process Tor
# carrier get no answer in 180 s in CI, which it never did here; until that is understood
# the smoke run measures what is published.
./bench/run.sh --smoke
phase "fuzz smoke run (each target 30 s)"
# Every wire parser's fuzz target (fuzz/, docs/FUZZING.md) on its seed corpus; a crash fails.
./scripts/fuzz.sh 30
phase "cargo doc"
RUSTDOCFLAGS="-D warnings" cargo doc --workspace --no-deps --locked --quiet
skipped=$(sort -u "$SB_SKIP_LOG" | wc -l)
if [ "$skipped" -gt 0 ]; then
    echo "== skipped: $skipped test suite(s) could not run here:"
    sort -u "$SB_SKIP_LOG" | sed 's/^/   /'
else
    echo "== skipped: 0 test suites"
fi
phase "all checks passed (total $SECONDS s)"
