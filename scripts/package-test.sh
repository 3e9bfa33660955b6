#!/usr/bin/env bash
# The package test (root): builds the kadeploy3 .deb, installs it with dpkg in a scratch root (an overlay
# of / in private mount, network and PID namespaces: the machine's own files, dpkg database and network
# are untouched), starts the commands of the installed systemd units the way systemd would (their User,
# AmbientCapabilities and ExecStart, read from the unit files), fetches a file from kabootd over TFTP and
# HTTP as an unprivileged `deploy` user bound to ports 69 and 80, and deploys the simulated 300-node
# cluster through the installed kadeploy3d with the installed clients. Exit 0 only if all of it worked.
#
#   scripts/package-test.sh [path/to/kadeploy3.deb]
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$(id -u)" != 0 ]; then
    echo "package-test: run as root (namespaces, mounts, dpkg in a scratch root)" >&2
    exit 2
fi
deb="${1:-$(scripts/package.sh)}"
deb=$(readlink -f "$deb")
echo "package-test: $deb"
dpkg-deb --info "$deb" | sed -n 's/^ \(Package\|Version\|Depends\|Installed-Size\):/  &/p'

scratch=$(mktemp -d /tmp/kadeploy-pkgtest.XXXXXX)
trap 'umount -R "$scratch" 2>/dev/null || true; rm -rf "$scratch"' EXIT
mount -t tmpfs -o size=2g tmpfs "$scratch"
mkdir -p "$scratch/upper" "$scratch/work" "$scratch/root"
cp "$deb" "$scratch/upper/kadeploy3.deb"
cp scripts/package-test-inner.sh "$scratch/upper/package-test-inner.sh"

# PID namespace: every process started inside dies with its init when this returns.
unshare --mount --net --pid --fork --propagation private bash -euo pipefail -c '
    scratch=$1
    mount -t overlay overlay -o "lowerdir=/,upperdir=$scratch/upper,workdir=$scratch/work" "$scratch/root"
    mount -t proc proc "$scratch/root/proc"
    mount --rbind /dev "$scratch/root/dev"
    mount -t tmpfs tmpfs "$scratch/root/run"
    mount -t tmpfs tmpfs "$scratch/root/tmp"
    ip link set lo up
    exec chroot "$scratch/root" /bin/bash /package-test-inner.sh
' package-test "$scratch"
