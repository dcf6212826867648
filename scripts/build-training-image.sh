#!/usr/bin/env bash
# Build batchemu-train:latest, a tiny SageMaker-style training image, FROM the local batchemu-test:latest
# (scripts/build-test-image.sh): no registry involved. Its /bin/train is scripts/training-image/train.
# Idempotent: does nothing when the image exists (BATCHEMU_REBUILD_IMAGE=1 rebuilds).
set -euo pipefail

image="${BATCHEMU_TRAIN_IMAGE:-batchemu-train:latest}"
base="${BATCHEMU_TEST_IMAGE:-batchemu-test:latest}"
here="$(cd "$(dirname "$0")" && pwd)"

if [ "${BATCHEMU_REBUILD_IMAGE:-}" != "1" ] && docker image inspect "$image" >/dev/null 2>&1; then
    echo "build-training-image: $image already present" >&2
    exit 0
fi
context="$(mktemp -d)"
trap 'rm -rf "$context"' EXIT
cp "$here/training-image/train" "$context/train"
cat >"$context/Dockerfile" <<DOCKERFILE
FROM $base
COPY train /bin/train
DOCKERFILE
DOCKER_BUILDKIT=0 docker build -q -t "$image" "$context" >/dev/null
echo "build-training-image: built $image" >&2
