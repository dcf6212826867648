#!/usr/bin/env bash
# Make sure a Docker Engine answers on this machine: install Debian's docker.io if dockerd is missing,
# start dockerd in the background if it is not running, and wait until `docker info` works.
# Idempotent: exits 0 at once when the engine already answers. Run as root (CI is root); a non-root
# user gets the commands to run instead, unless BATCHEMU_INSTALL_DOCKER=1 (then sudo must work).
#
# Environment:
#   BATCHEMU_INSTALL_DOCKER=1   install docker.io even when not root (through sudo)
#   BATCHEMU_DOCKERD_LOG        dockerd log file (default /var/log/batchemu-dockerd.log)
#   BATCHEMU_DOCKER_WAIT        seconds to wait for the engine (default 60)
#   BATCHEMU_STORAGE_DRIVER     force a storage driver (default: overlay2 when the kernel can mount it, else vfs)
set -euo pipefail

log_file="${BATCHEMU_DOCKERD_LOG:-/var/log/batchemu-dockerd.log}"
wait_seconds="${BATCHEMU_DOCKER_WAIT:-60}"

say() { echo "ensure-docker: $*" >&2; }

engine_answers() { docker info >/dev/null 2>&1; }

if engine_answers; then
    say "Docker Engine already answers ($(docker version --format '{{.Server.Version}} (API {{.Server.APIVersion}})' 2>/dev/null))"
    exit 0
fi

as_root() {
    if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

if ! command -v dockerd >/dev/null 2>&1; then
    if [ "$(id -u)" -ne 0 ] && [ "${BATCHEMU_INSTALL_DOCKER:-}" != "1" ]; then
        say "dockerd is not installed. Install Debian's engine and rerun:"
        say "  sudo apt-get update && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y docker.io"
        say "(or rerun with BATCHEMU_INSTALL_DOCKER=1 to let this script do it through sudo)"
        exit 1
    fi
    say "installing docker.io"
    as_root apt-get update -q
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q docker.io
fi

if [ "$(id -u)" -ne 0 ] && ! pgrep -x dockerd >/dev/null 2>&1; then
    say "dockerd is not running and starting it needs root: sudo $0"
    exit 1
fi

# overlay2 needs an overlay mount on the filesystem under /var/lib/docker; some sandboxes refuse it.
pick_storage_driver() {
    if [ -n "${BATCHEMU_STORAGE_DRIVER:-}" ]; then
        echo "$BATCHEMU_STORAGE_DRIVER"
        return
    fi
    mkdir -p /var/lib/docker
    local probe
    probe="$(mktemp -d /var/lib/docker/.overlay-probe.XXXXXX)"
    mkdir -p "$probe/lower" "$probe/upper" "$probe/work" "$probe/merged"
    if mount -t overlay overlay -o "lowerdir=$probe/lower,upperdir=$probe/upper,workdir=$probe/work" \
            "$probe/merged" 2>/dev/null; then
        umount "$probe/merged"
        echo overlay2
    else
        echo vfs
    fi
    rm -rf "$probe"
}

if ! pgrep -x dockerd >/dev/null 2>&1; then
    driver="$(pick_storage_driver)"
    mkdir -p "$(dirname "$log_file")"
    say "starting dockerd (storage driver $driver, log $log_file)"
    # A stale pid file from a killed dockerd makes the new one refuse to start.
    if [ -f /var/run/docker.pid ] && ! kill -0 "$(cat /var/run/docker.pid)" 2>/dev/null; then
        rm -f /var/run/docker.pid
    fi
    # Its own session, so neither the caller's exit nor a Ctrl-C in its terminal stops the engine.
    setsid nohup dockerd --storage-driver="$driver" >>"$log_file" 2>&1 </dev/null &
    disown || true
fi

deadline=$((SECONDS + wait_seconds))
until engine_answers; do
    if [ "$SECONDS" -ge "$deadline" ]; then
        say "Docker Engine did not answer within ${wait_seconds}s; last lines of $log_file:"
        tail -n 30 "$log_file" >&2 || true
        exit 1
    fi
    if ! pgrep -x dockerd >/dev/null 2>&1; then
        say "dockerd exited; last lines of $log_file:"
        tail -n 30 "$log_file" >&2 || true
        exit 1
    fi
    sleep 0.5
done

say "Docker Engine answers: $(docker info --format 'server {{.ServerVersion}}, storage {{.Driver}}, cgroup v{{.CgroupVersion}} ({{.CgroupDriver}})' 2>/dev/null)"
