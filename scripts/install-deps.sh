#!/usr/bin/env bash
# Installs the Debian packages the tests, the QEMU lab and the services the tests start need (root only).
#
# Idempotent: on a new machine and on one already set up. QEMU comes from bookworm-backports: the
# machine image ships qemu-utils 10 from there, which Breaks bookworm's qemu-system-common 7.2, so
# `apt-get install qemu-system-x86` from bookworm stops with "held broken packages".
#
# Packages, by what needs them:
# - network boot tests: busybox-static (udhcpc), tftp-hpa, curl, iproute2, cpio;
# - QEMU: qemu-system-x86, ipxe-qemu (the NIC's PXE ROM), qemu-utils (qemu-img), radvd (ends iPXE's IPv6 wait);
# - the lab's UEFI and GRUB boots: ovmf (UEFI firmware), ipxe (snponly.efi for UEFI HTTP boot), grub-pc-bin and
#   grub-efi-amd64-bin (GRUB's modules; grub-mkimage comes with their grub-common);
# - SSH backend tests: openssh-server and dropbear-bin (real servers), openssh-client (ssh-keygen, ssh);
# - IPMI: ipmitool (drives the lab BMCs), openipmi (ipmi_sim, an independent BMC for the native client);
# - the lab's deploy kernel and environments are built from these: dropbear-bin, fdisk, parted, e2fsprogs,
#   kexec-tools, extlinux, syslinux-common, pxelinux, dash, xz-utils, zstd, bzip2, binutils (strip);
# - the lab kernel (qemu-lab/src/images/kernel.rs) from Debian's kernel source: linux-source-6.1, gcc, make,
#   flex, bison, bc, libelf-dev, lz4;
# - consoles: socat;
# - the Kadeploy 3.3 import test: mariadb-server, mariadb-client (a private mariadbd the test starts);
# - the metrics test: prometheus (promtool checks the exposition);
# - the package test: cargo-deb's strip (binutils), setpriv (util-linux), ss (iproute2), tftp-hpa, curl;
# - the broadcast testbed (scripts/bcast-testbed.sh): udpcast, the peer multicast is compared with; nftables,
#   the packet loss of the multicast FEC tests (this kernel has no netem);
# - kasim sweeps as Slurm job arrays: slurm-wlm, munge (a private single-node Slurm the test starts);
# - out-of-band power: snmp (net-snmp's snmpget/snmpset against the lab PDU), python3-venv for the independent
#   emulators from PyPI (sushy-tools' Redfish emulator, snmpsim) in /opt/kadeploy-pytools, linked into
#   /usr/local/bin. Debian's python, not a user's pyenv: snmpsim drops root to `nobody`, who must read it.
# Services start inside the tests (sshd, dropbear, ipmi_sim, kabootd, kadeploy3d, radvd), never system-wide:
# a policy-rc.d keeps the packages' postinst scripts from starting daemons.
set -euo pipefail

if [ "$(id -u)" != 0 ]; then
    echo "install-deps: run as root (sudo $0): it installs Debian packages" >&2
    exit 2
fi

export DEBIAN_FRONTEND=noninteractive
codename=$(. /etc/os-release && echo "${VERSION_CODENAME:-bookworm}")
backports="$codename-backports"

# The backports suite, unless a source already names it.
if ! grep -rqs "^[^#]*$backports" /etc/apt/sources.list /etc/apt/sources.list.d/; then
    cat > /etc/apt/sources.list.d/kadeploy-backports.sources <<SOURCES
Types: deb
URIs: http://deb.debian.org/debian
Suites: $backports
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SOURCES
fi

if [ ! -e /usr/sbin/policy-rc.d ] || ! grep -q 'exit 101' /usr/sbin/policy-rc.d; then
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
    chmod 755 /usr/sbin/policy-rc.d
fi

apt-get update

packages=(
    busybox-static tftp-hpa curl iproute2 cpio socat
    radvd openssh-client openssh-server dropbear-bin ipmitool openipmi
    fdisk parted e2fsprogs util-linux kexec-tools extlinux syslinux-common pxelinux dash
    xz-utils zstd bzip2 binutils
    linux-source-6.1 gcc make flex bison bc libelf-dev lz4
    ovmf ipxe grub-pc-bin grub-efi-amd64-bin
    mariadb-server mariadb-client prometheus
    snmp python3-venv slurm-wlm munge udpcast nftables
)
qemu=(qemu-system-x86 qemu-utils ipxe-qemu)

# Every QEMU package from backports (`-t` makes that suite win for them and their dependencies).
apt-get install -y --no-install-recommends -t "$backports" "${qemu[@]}"
apt-get install -y --no-install-recommends "${packages[@]}"
qemu-system-x86_64 --version | head -n 1

# Independent Redfish and SNMP implementations the power clients are tested against (PyPI, pinned).
# snmpsim does not pull pysmi in, and its SNMPv3 privacy needs cryptography.
pytools=/opt/kadeploy-pytools
if [ ! -x "$pytools/bin/snmpsim-command-responder" ] || [ ! -x "$pytools/bin/sushy-emulator" ]; then
    /usr/bin/python3 -m venv "$pytools"
    "$pytools/bin/pip" install -q sushy-tools==2.2.0 snmpsim==1.2.2 pysnmp==7.1.30 pysmi==2.0.0 cryptography==50.0.2
fi
chmod -R a+rX "$pytools"
for tool in sushy-emulator snmpsim-command-responder; do
    ln -sf "$pytools/bin/$tool" "/usr/local/bin/$tool"
done
