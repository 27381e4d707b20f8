#!/usr/bin/env bash
# The one command that checks sb: installs missing test peers, then runs formatting, lints,
# every test (including the parity suite against the real Go sing-box binary) and the docs.
set -euo pipefail
cd "$(dirname "$0")/.."
# rustup installs into ~/.cargo/bin, which a non-login shell may not have on PATH.
[ -d "$HOME/.cargo/bin" ] && export PATH="$HOME/.cargo/bin:$PATH"

./scripts/install-test-deps.sh

echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy (all targets, all features, -D warnings)"
cargo clippy --workspace --all-targets --all-features --locked -- -D warnings
echo "== cargo test (workspace)"
CI="${CI:-}" cargo test --workspace --all-features --locked
echo "== benchmark harness (smoke mode: builds in release, runs every measurement briefly)"
./bench/run.sh --smoke
echo "== cargo doc"
RUSTDOCFLAGS="-D warnings" cargo doc --workspace --no-deps --locked --quiet
echo "== all checks passed"
