#!/usr/bin/env bash
# netvagt installer for Debian 12 / Raspberry Pi OS (bookworm).
#
#   sudo ./install.sh            system packages + the project's virtual environment (.venv),
#                                both sides (what the demo needs)
#   sudo ./install.sh --dev      the same, plus test and lint tools
#   sudo ./install.sh --sensor   the sensor's parts only (netvagt[sensor]) + service user,
#                                directories, the agent's systemd unit
#   sudo ./install.sh --central  the central's parts only (netvagt[central]) + service user,
#                                Mosquitto with per-sensor access (dynamic
#                                security) and a TLS listener with a self-signed CA, the
#                                central's systemd unit
#   --recog DIR                  with any of them: import recog's fingerprints from a copy
#                                (an offline machine) instead of fetching the release;
#                                checked against the same pins
#
# Idempotent: running it again installs only what is missing. Says what it does.
set -euo pipefail

DEV=0
ROLE=""
RECOG_DIR=""
want_recog_dir=0
for arg in "$@"; do
    if [ "$want_recog_dir" -eq 1 ]; then RECOG_DIR="$arg"; want_recog_dir=0; continue; fi
    case "$arg" in
        --dev) DEV=1 ;;
        --recog) want_recog_dir=1 ;;
        --recog=*) RECOG_DIR="${arg#--recog=}" ;;
        --sensor) ROLE=sensor ;;
        --central) ROLE=central ;;
        -h|--help) sed -n '2,17p' "$0"; exit 0 ;;
        *) echo "install.sh: unknown option '$arg' (try --help)" >&2; exit 2 ;;
    esac
done

if [ "$want_recog_dir" -eq 1 ] || { [ -n "$RECOG_DIR" ] && [ ! -d "$RECOG_DIR/xml" ]; }; then
    echo "install.sh: --recog needs the folder of a recog release (with xml/ and identifiers/)" >&2
    exit 2
fi
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
          iputils-ping procps python3 python3-venv python3-dev ca-certificates tcpdump openssl curl)
# the console's browser tests drive Debian's chromium (Playwright points at it; no browser
# is downloaded)
if [ "$DEV" -eq 1 ]; then
    PACKAGES+=(chromium)
fi
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
# The packaged broker is started by the project when it needs one (demo, tests); don't leave
# a second broker listening on 1883 of the host, unless this machine is the central.
if [ "$ROLE" != central ] && command -v systemctl >/dev/null 2>&1 \
        && systemctl is-enabled mosquitto >/dev/null 2>&1; then
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
# constraints.txt: the versions the test suite ran with (see its header)
# extras: a sensor gets the sensor's parts only, the central the central's; a plain install
# (the demo runs both sides on one machine) and --dev get both
case "$ROLE" in
    sensor) EXTRA=sensor ;;
    central) EXTRA=central ;;
    *) EXTRA=all ;;
esac
if [ "$DEV" -eq 1 ]; then
    "$VENV/bin/python" -m pip install -q -c "$HERE/constraints.txt" -e "$HERE[dev]"
else
    "$VENV/bin/python" -m pip install -q -c "$HERE/constraints.txt" "$HERE[$EXTRA]"
fi
for cmd in netvagt-agent netvagt-central; do
    ln -sf "$VENV/bin/$cmd" "/usr/local/bin/$cmd"
done
say "netvagt-agent and netvagt-central are in /usr/local/bin"

service_user() {
    if ! id netvagt >/dev/null 2>&1; then
        say "creating the system user 'netvagt'"
        useradd --system --home-dir /var/lib/netvagt --shell /usr/sbin/nologin netvagt
    fi
    install -d -m 0700 -o netvagt -g netvagt /var/lib/netvagt
    install -d -m 0755 /etc/netvagt
}

unit() {  # install a systemd unit if systemd runs here
    if [ -d /run/systemd/system ]; then
        install -m 0644 "$HERE/packaging/$1" "/etc/systemd/system/$1"
        systemctl daemon-reload
        say "installed $1"
    else
        say "no systemd here: $1 not installed (see packaging/$1)"
    fi
}

# Rapid7 recog's fingerprints (BSD-2-Clause): fetched from its public release archive and
# checked file by file against the SHA-256 pins in fingerprints/pins/ before use. Without a
# network the built-in rules still work: bring a copy and run 'netvagt-agent fingerprints
# import DIR' (or 'netvagt-central fingerprints import DIR').
fetch_recog() {
    local cli="$VENV/bin/$1" release archive tmp
    if [ -n "$RECOG_DIR" ]; then
        say "importing recog from $RECOG_DIR (checked against the pins)"
        "$cli" fingerprints import "$RECOG_DIR" || {
            echo "install.sh: recog in $RECOG_DIR was not imported (see above)" >&2; exit 1; }
        return 0
    fi
    if "$cli" fingerprints status 2>/dev/null | grep -q '^recog '; then
        say "recog fingerprints already installed"; return 0
    fi
    release=$("$VENV/bin/python" -c 'from fingerprints.databases import RECOG_RELEASE as r; print(r)')
    archive=$("$VENV/bin/python" -c 'from fingerprints.databases import RECOG_ARCHIVE as a; print(a)')
    tmp=$(mktemp -d)
    say "fetching recog $release (fingerprint database)"
    if command -v curl >/dev/null 2>&1 \
            && curl -fsSL --max-time 60 --max-filesize 20000000 -o "$tmp/recog.tar.gz" "$archive" \
            && tar -xzf "$tmp/recog.tar.gz" -C "$tmp" --no-same-owner \
            && "$cli" fingerprints import "$tmp/recog-${release#v}"; then
        :
    else
        echo "install.sh: warning: recog not fetched; the built-in rules still work." \
             "On an offline machine: $1 fingerprints import DIR" >&2
    fi
    rm -rf "$tmp"
}

if [ "$ROLE" = sensor ]; then
    service_user
    fetch_recog netvagt-agent
    unit netvagt-agent.service
    # a sensor on a trunk port: one sub-interface per [[scan.vlans]], where the kernel has
    # 802.1Q (without it the sensor speaks tagged frames itself, and this says so)
    if [ -f /etc/netvagt/agent.toml ] && grep -q '^\[\[scan\.vlans\]\]' /etc/netvagt/agent.toml; then
        say "setting up the VLAN sub-interfaces of /etc/netvagt/agent.toml"
        "$VENV/bin/netvagt-agent" vlans --apply --config /etc/netvagt/agent.toml || \
            echo "install.sh: warning: the VLAN sub-interfaces were not set up (see above)" >&2
    fi
    cat <<'NEXT'
next steps on this sensor:
  sudo netvagt-agent enroll --central CENTRAL_HOST:8883 --ca-file ca.crt --token TOKEN \
       --state-dir /var/lib/netvagt --config /etc/netvagt/agent.toml
  sudo netvagt-agent doctor
  sudo systemctl enable --now netvagt-agent
on a trunk port: list the VLANs as [[scan.vlans]] in /etc/netvagt/agent.toml (see the
README's segmentation section), then: sudo netvagt-agent vlans --apply
NEXT
fi

if [ "$ROLE" = central ]; then
    service_user
    fetch_recog netvagt-central
    TLS=/etc/netvagt/tls
    if [ ! -f "$TLS/ca.crt" ]; then
        say "creating a self-signed CA and the broker's certificate in $TLS"
        install -d -m 0755 "$TLS"
        NAME="$(hostname -f 2>/dev/null || hostname)"
        openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 3650 -subj "/CN=netvagt CA" \
            -keyout "$TLS/ca.key" -out "$TLS/ca.crt" 2>/dev/null
        openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -subj "/CN=$NAME" -keyout "$TLS/broker.key" \
            -out "$TLS/broker.csr" 2>/dev/null
        printf 'subjectAltName=DNS:%s,DNS:localhost,IP:127.0.0.1\n' "$NAME" > "$TLS/san.ext"
        openssl x509 -req -in "$TLS/broker.csr" -CA "$TLS/ca.crt" -CAkey "$TLS/ca.key" \
            -CAcreateserial -days 825 -extfile "$TLS/san.ext" -out "$TLS/broker.crt" 2>/dev/null
        chmod 0600 "$TLS/ca.key"; chown mosquitto "$TLS/broker.key"; chmod 0600 "$TLS/broker.key"
    fi
    if [ ! -f /etc/netvagt/broker-admin.password ]; then
        say "initialising Mosquitto's dynamic security with the central's admin user"
        PASSWORD="$(openssl rand -base64 24)"
        install -m 0600 -o netvagt -g netvagt /dev/null /etc/netvagt/broker-admin.password
        printf '%s' "$PASSWORD" > /etc/netvagt/broker-admin.password
        install -d -m 0700 -o mosquitto /var/lib/mosquitto
        mosquitto_ctrl dynsec init /var/lib/mosquitto/dynamic-security.json netvagt-central \
            "$PASSWORD" >/dev/null
        chown mosquitto /var/lib/mosquitto/dynamic-security.json
    fi
    if [ ! -f /etc/netvagt/policy.toml ]; then
        install -m 0644 "$HERE/packaging/policy.example.toml" /etc/netvagt/policy.toml
        say "installed the example zone policy as /etc/netvagt/policy.toml: edit its zones"
    fi
    PLUGIN="$(ls /usr/lib/*/mosquitto_dynamic_security.so 2>/dev/null | head -n1)"
    sed -e "s|@PLUGIN@|$PLUGIN|" -e "s|@TLS@|$TLS|g" "$HERE/packaging/mosquitto-netvagt.conf" \
        > /etc/mosquitto/conf.d/netvagt.conf
    say "wrote /etc/mosquitto/conf.d/netvagt.conf (1883 on localhost, 8883 with TLS)"
    unit netvagt-central.service
    if [ -d /run/systemd/system ]; then
        systemctl enable --now mosquitto >/dev/null 2>&1 || true
        systemctl restart mosquitto
    fi
    cat <<NEXT
next steps on the central:
  edit /etc/netvagt/policy.toml (your zones, CIDRs and allowed flows), then
  netvagt-central policy check --policy /etc/netvagt/policy.toml
  sudo systemctl enable --now netvagt-central
  netvagt-central token create --org ORG --site SITE --zone ZONE     (one per sensor)
  give each technician the token and $TLS/ca.crt
NEXT
fi
# a plain install runs the demo, sensors and central on this machine: it identifies with
# recog too (the tests of --dev load their own copy)
if [ -z "$ROLE" ] && { [ "$DEV" -eq 0 ] || [ -n "$RECOG_DIR" ]; }; then
    fetch_recog netvagt-central
fi
say "done"
