#!/bin/sh
# kalab-linux environment: init of its tiny initramfs: mount root= (a device, UUID= or LABEL=) and switch_root
# (the lab kernel has virtio_blk and ext4 built in).
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
root=
for a in $(cat /proc/cmdline); do
	case "$a" in root=*) root="${a#root=}" ;; esac
done
case "$root" in UUID=* | LABEL=*) root=$(findfs "$root") ;; esac
i=0
while [ ! -b "$root" ] && [ $i -lt 100 ]; do
	sleep 0.1
	i=$((i + 1))
done
mkdir -p /newroot
if mount -t ext4 -o rw "$root" /newroot; then
	umount /proc /sys
	mount --move /dev /newroot/dev 2>/dev/null || umount /dev
	exec switch_root /newroot /sbin/init
fi
echo "kalab initramfs: cannot mount root=$root" >/dev/console
exec sh -i <>/dev/ttyS0 >&0 2>&1
