#!/usr/bin/env bash
# netvagt installer for Debian 12 / Raspberry Pi OS (bookworm).
#
#   sudo ./install.sh          system packages + the project's virtual environment (.venv)
#   sudo ./install.sh --dev    the same, plus test and lint tools
#
# Idempotent: running it again installs only what is missing. Says what it does.
set -euo pipefail

DEV=0
for arg in "$@"; do
    case "$arg" in
        --dev) DEV=1 ;;
        -h|--help) sed -n '2,9p' "$0"; exit 0 ;;
        *) echo "install.sh: unknown option '$arg' (try --help)" >&2; exit 2 ;;
    esac
done

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
VENV="$HERE/.venv"
say() { printf '\033[1m==> %s\033[0m\n' "$*"; }

if [ "$(id -u)" -ne 0 ]; then
    echo "install.sh: needs root to install system packages (run: sudo ./install.sh)" >&2
    exit 1
fi
if ! command -v apt-get >/dev/null 2>&1 || [ ! -r /etc/debian_version ]; then
    echo "install.sh: needs a Debian-like system with apt-get (Debian 12, Raspberry Pi OS)" >&2
    exit 1
fi

# nmap: service detection; mosquitto(+clients): the broker; libpcap: scapy's filters;
# iproute2 + nftables: interfaces and the lab's router; arp-scan: the benchmark's peer tool;
# tcpdump: the tests' proof that excluded devices receive nothing.
PACKAGES=(nmap mosquitto mosquitto-clients libpcap0.8 iproute2 nftables arp-scan
          iputils-ping procps python3 python3-venv python3-dev ca-certificates tcpdump)
missing=()
for pkg in "${PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" \
        || missing+=("$pkg")
done
if [ "${#missing[@]}" -gt 0 ]; then
    say "installing system packages: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}"
else
    say "system packages already installed"
fi
# The packaged broker is started by the project when it needs one; don't leave a second
# broker listening on 1883 of the host.
if command -v systemctl >/dev/null 2>&1 && systemctl is-enabled mosquitto >/dev/null 2>&1; then
    say "disabling the distribution's default mosquitto service (netvagt runs its own)"
    systemctl disable --now mosquitto >/dev/null 2>&1 || true
fi

PYTHON="${PYTHON:-python3}"
if ! "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
    echo "install.sh: netvagt needs Python 3.11 or newer ($PYTHON is $("$PYTHON" -V 2>&1))" >&2
    exit 1
fi
if [ ! -x "$VENV/bin/python" ]; then
    say "creating the virtual environment $VENV"
    "$PYTHON" -m venv "$VENV"
fi
say "installing netvagt into $VENV"
"$VENV/bin/python" -m pip install -q --upgrade pip
if [ "$DEV" -eq 1 ]; then
    "$VENV/bin/python" -m pip install -q -e "$HERE[dev]"
else
    "$VENV/bin/python" -m pip install -q "$HERE"
fi
for cmd in netvagt-agent netvagt-central; do
    ln -sf "$VENV/bin/$cmd" "/usr/local/bin/$cmd"
done
say "done: netvagt-agent and netvagt-central are in /usr/local/bin"
