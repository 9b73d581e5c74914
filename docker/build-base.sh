#!/bin/sh
# Make the base image the Dockerfiles start from where no registry is reachable:
# debootstrap (minbase, bookworm) from the Debian mirror apt uses here, then `docker import`.
#   docker/build-base.sh [IMAGE]      (default IMAGE: local/debian:bookworm)
# Then build with --build-arg BASE_IMAGE=local/debian:bookworm. Needs root and DOCKER_HOST.
set -eu

IMAGE="${1:-local/debian:bookworm}"
SUITE=bookworm

if docker image inspect "$IMAGE" >/dev/null 2>&1; then
    echo "$IMAGE already exists"
    exit 0
fi

mirror() {
    # the first Debian archive URI in apt's sources (deb822 or one-line format), security excluded
    { grep -hE '^URIs:' /etc/apt/sources.list.d/*.sources 2>/dev/null | awk '{print $2}'
      grep -hE '^deb ' /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null | awk '{print $2}'
    } | grep -v security | grep -i debian | head -n 1
}
MIRROR="${DEBIAN_MIRROR:-$(mirror)}"
MIRROR="${MIRROR:-http://deb.debian.org/debian}"

ROOTFS=$(mktemp -d "${TMPDIR:-/tmp}/kazoo-base-rootfs.XXXXXX")
trap 'rm -rf "$ROOTFS"' EXIT INT TERM

echo "debootstrap --variant=minbase $SUITE from $MIRROR"
debootstrap --variant=minbase "$SUITE" "$ROOTFS" "$MIRROR" >"$ROOTFS.log" 2>&1 || {
    tail -n 30 "$ROOTFS.log" >&2
    rm -f "$ROOTFS.log"
    exit 1
}
rm -f "$ROOTFS.log"
# smaller image: no apt lists or package cache in the base
rm -rf "$ROOTFS"/var/lib/apt/lists/* "$ROOTFS"/var/cache/apt/archives/*.deb
tar --numeric-owner -C "$ROOTFS" -c . | docker import - "$IMAGE"
echo "built $IMAGE"
