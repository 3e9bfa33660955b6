#!/bin/sh
# kalab-linux environment: the boot script busybox init runs first (`::sysinit` in /etc/inittab).
. /etc/kalab-common.sh
kalab_mounts
mount -o remount,rw / 2>/dev/null
hostname kalab-env
kalab_network
kalab_sshd
[ -f /etc/kalab-marker ] && echo "kalab-env marker $(cat /etc/kalab-marker)" >/dev/ttyS0
echo "kalab-env ready $(hostname)" >/dev/ttyS0
