#!/usr/bin/env bash
# Build batchemu-snakemake:latest, the job image of tests/test_snakemake.py, without any registry: FROM the
# local batchemu-test:latest (busybox, scripts/build-test-image.sh), plus this machine's Debian Python 3.11
# (/usr/bin/python3.11 and its standard library), bash, the shared libraries they and the packages load
# (found with ldd), and PACKAGES installed by PIP into /usr/local/lib/python3.11/dist-packages.
#
#   bash scripts/build-snakemake-image.sh PIP PACKAGES...
#
# Idempotent: does nothing when the image exists with a label naming these packages and this script;
# BATCHEMU_REBUILD_IMAGE=1 rebuilds anyway.
set -euo pipefail

image="${BATCHEMU_SNAKEMAKE_IMAGE:-batchemu-snakemake:latest}"
base="${BATCHEMU_TEST_IMAGE:-batchemu-test:latest}"
pip="$1"
shift
say() { echo "build-snakemake-image: $*" >&2; }

key="$( (cat "$0"; echo "$@") | sha256sum | cut -d' ' -f1)"
present="$(docker image inspect -f '{{ index .Config.Labels "batchemu.snakemake-sha256" }}' "$image" 2>/dev/null || true)"
if [ "${BATCHEMU_REBUILD_IMAGE:-}" != "1" ] && [ "$present" = "$key" ]; then
    say "$image already present"
    exit 0
fi
python=/usr/bin/python3.11
[ -x "$python" ] || { say "needs Debian's python3.11 at $python"; exit 1; }

context="$(mktemp -d)"
trap 'rm -rf "$context"' EXIT
rootfs="$context/rootfs"
packages="$rootfs/usr/local/lib/python3.11/dist-packages"
mkdir -p "$rootfs/usr/bin" "$rootfs/usr/lib" "$rootfs/usr/local/bin" "$packages"
cp -a "$python" /usr/bin/bash "$rootfs/usr/bin/"
cp -a /usr/lib/python3.11 "$rootfs/usr/lib/"
rm -rf "$rootfs/usr/lib/python3.11/test" "$rootfs/usr/lib/python3.11/sitecustomize.py"
"$pip" install --quiet --no-compile --target "$packages" "$@"
rm -rf "$packages/bin"

# Every shared library that python, bash and the extension modules load, at the path ldd found it.
find "$rootfs" -type f \( -name '*.so' -o -name '*.so.*' \) -print0 \
    | xargs -0 ldd "$python" /usr/bin/bash 2>/dev/null \
    | awk '/=> \// { print $3 } /^[ \t]*\/lib64\// { print $1 }' | sort -u \
    | while read -r library; do
        mkdir -p "$rootfs$(dirname "$library")"
        cp -L "$library" "$rootfs$library"
    done
mkdir -p "$rootfs/bin" && ln -s /usr/bin/bash "$rootfs/bin/bash"
ln -s /usr/bin/python3.11 "$rootfs/usr/local/bin/python"
ln -s /usr/bin/python3.11 "$rootfs/usr/local/bin/python3"
printf '#!/bin/sh\nexec python3 -m snakemake "$@"\n' >"$rootfs/usr/local/bin/snakemake"
chmod +x "$rootfs/usr/local/bin/snakemake"

cat >"$context/Dockerfile" <<DOCKERFILE
FROM $base
COPY rootfs/ /
ENV PATH=/usr/local/bin:/usr/bin:/bin HOME=/root
WORKDIR /workflow
LABEL batchemu.snakemake-sha256=$key
DOCKERFILE
DOCKER_BUILDKIT=0 docker build -q -t "$image" "$context" >/dev/null
say "built $image"
