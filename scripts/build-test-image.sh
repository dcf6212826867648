#!/usr/bin/env bash
# Build the local image batchemu-test:latest without any registry: a root filesystem holding Debian's
# static busybox and a symlink per applet (sh, sleep, echo, cat, env, wget, dd, head, ...), imported with
# `docker import`. Idempotent: does nothing when the image exists (BATCHEMU_REBUILD_IMAGE=1 rebuilds).
#
# The image's busybox can exceed a memory limit for OOM tests, e.g.
#   docker run --rm -m 8m --memory-swap 8m batchemu-test sh -c 'x=$(head -c 64m /dev/zero | tr "\0" a)'
set -euo pipefail

image="${BATCHEMU_TEST_IMAGE:-batchemu-test:latest}"

say() { echo "build-test-image: $*" >&2; }

if [ "${BATCHEMU_REBUILD_IMAGE:-}" != "1" ] && docker image inspect "$image" >/dev/null 2>&1; then
    say "$image already present"
    exit 0
fi

busybox=/bin/busybox
# The busybox package of Debian is dynamically linked; only busybox-static runs in an empty image.
is_static() { [ -x "$busybox" ] && { LC_ALL=C ldd "$busybox" 2>&1 || true; } | grep -q "not a dynamic"; }
if ! is_static; then
    if [ "$(id -u)" -ne 0 ]; then
        say "needs Debian's busybox-static: sudo apt-get install -y busybox-static"
        exit 1
    fi
    say "installing busybox-static"
    apt-get update -q
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q busybox-static
fi

rootfs="$(mktemp -d)"
trap 'rm -rf "$rootfs"' EXIT

mkdir -p "$rootfs/bin" "$rootfs/etc" "$rootfs/root" "$rootfs/tmp" "$rootfs/var/tmp" "$rootfs/home/nobody"
chmod 1777 "$rootfs/tmp" "$rootfs/var/tmp"
cp "$busybox" "$rootfs/bin/busybox"
for applet in $("$busybox" --list); do
    [ "$applet" = busybox ] || ln -sf busybox "$rootfs/bin/$applet"
done
# Names for uid 0 and an unprivileged user, so `user: nobody` and `id` work in jobs.
cat >"$rootfs/etc/passwd" <<'EOF'
root:x:0:0:root:/root:/bin/sh
nobody:x:65534:65534:nobody:/home/nobody:/bin/sh
EOF
cat >"$rootfs/etc/group" <<'EOF'
root:x:0:
nogroup:x:65534:
EOF
chown 65534:65534 "$rootfs/home/nobody"

tar -C "$rootfs" --numeric-owner -cf - . | docker import \
    --change 'CMD ["/bin/sh"]' \
    --change 'ENV PATH=/bin' \
    --message "batchemu test image: busybox $("$busybox" | head -n 1 | awk '{print $2}')" \
    - "$image" >/dev/null
say "built $image"
