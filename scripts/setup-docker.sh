#!/usr/bin/env bash
# Make sure a Docker engine answers on this machine; install and start one if none does.
#
# Idempotent: does nothing when an engine already answers, and never starts a second daemon.
# Bookworm's docker.io 20.10 cannot run --privileged containers on hosts whose capability
# bounding set lacks a capability (it asks runc for all of them; fixed by moby PR 42933 in 23.0),
# so the engine comes from Debian trixie, pinned low so nothing else is upgraded from there.
set -euo pipefail

log() { printf 'setup-docker: %s\n' "$*" >&2; }

engine_answers() {
    # The client on PATH may be newer than the daemon; `docker version` needs both halves.
    timeout 10 docker version --format '{{.Server.Version}}' >/dev/null 2>&1
}

if engine_answers; then
    log "engine already answering: $(docker version --format '{{.Server.Version}}')"
    exit 0
fi

if [ "$(id -u)" != 0 ]; then
    log "no Docker engine answers and this script needs root to install one"
    exit 1
fi

need_install=1
if command -v dockerd >/dev/null 2>&1; then
    major=$(dockerd --version | sed -E 's/^Docker version ([0-9]+).*/\1/')
    [ "${major:-0}" -ge 23 ] && need_install=0
fi

if [ "$need_install" = 1 ]; then
    # Reuse the mirror and keyring of the machine's own Debian source.
    src=/etc/apt/sources.list.d/debian.sources
    uri=$(awk '/^URIs:/ {print $2; exit}' "$src" 2>/dev/null || true)
    uri=${uri:-http://deb.debian.org/debian}
    cat > /etc/apt/sources.list.d/trixie.sources <<SRC
Types: deb
URIs: $uri
Suites: trixie
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
    cat > /etc/apt/preferences.d/trixie-low <<PIN
Package: *
Pin: release n=trixie
Pin-Priority: 100
PIN
    log "installing docker.io from trixie"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq -t trixie \
        docker.io docker-cli containerd >/dev/null
fi

# A stale pid file from a daemon that no longer runs stops dockerd from starting.
if [ -f /var/run/docker.pid ] && ! kill -0 "$(cat /var/run/docker.pid)" 2>/dev/null; then
    rm -f /var/run/docker.pid
fi
if pgrep -x dockerd >/dev/null; then
    log "dockerd is running but not answering yet; waiting for it"
else
    log "starting dockerd"
    setsid nohup dockerd >/var/log/dockerd.log 2>&1 < /dev/null &
fi

for _ in $(seq 1 60); do
    if engine_answers; then
        log "engine up: $(docker version --format '{{.Server.Version}}')"
        exit 0
    fi
    sleep 0.5
done
log "dockerd did not answer within 30 s; last lines of /var/log/dockerd.log:"
tail -n 20 /var/log/dockerd.log >&2 || true
exit 1
