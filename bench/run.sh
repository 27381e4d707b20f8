#!/usr/bin/env bash
# Builds sb in release mode and runs the side-by-side benchmark against Go sing-box.
#   bench/run.sh            full run, rewrites the results table in docs/BENCHMARKS.md
#   bench/run.sh --smoke    every measurement briefly (CI), nothing written
#   bench/run.sh [--smoke] --only tun   one group of rows (relay, flows, ssh, tun), printed only
set -euo pipefail
cd "$(dirname "$0")/.."
[ -d "$HOME/.cargo/bin" ] && export PATH="$HOME/.cargo/bin:$PATH"
command -v iperf3 >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq iperf3 >/dev/null; }
cargo build --release --locked -q -p sb-cli -p sb-bench
if [ "$#" -gt 0 ]; then
    exec target/release/sb-bench "$@"
fi
target/release/sb-bench --out target/bench-results.md
python3 - <<'PY'
import re
doc = open("docs/BENCHMARKS.md").read()
res = open("target/bench-results.md").read()
doc = re.sub(r"<!-- results -->.*<!-- /results -->", "<!-- results -->\n" + res + "<!-- /results -->", doc, flags=re.S)
open("docs/BENCHMARKS.md", "w").write(doc)
PY
echo "docs/BENCHMARKS.md updated"
