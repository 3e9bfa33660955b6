#!/bin/sh
# kalab install_bootloader: run in the deploy kernel with Kadeploy's KADEPLOY_* environment, the deployed
# environment mounted on $KADEPLOY_ENV_EXTRACTION_DIR from $KADEPLOY_DEPLOY_PART. Installs extlinux into that
# partition's boot sector (chain-loaded by PXE: COM32 chain.c32 / APPEND hd0 <part>) and writes extlinux.conf.
set -e
dir="${KADEPLOY_ENV_EXTRACTION_DIR:?KADEPLOY_ENV_EXTRACTION_DIR is not set}"
part="${KADEPLOY_DEPLOY_PART:?KADEPLOY_DEPLOY_PART is not set}"
kernel="${KADEPLOY_ENV_KERNEL:?KADEPLOY_ENV_KERNEL is not set}"
mkdir -p "$dir/boot/extlinux"
extlinux --install "$dir/boot/extlinux"
{
	echo "DEFAULT kadeploy"
	echo "PROMPT 0"
	echo "TIMEOUT 1"
	echo "LABEL kadeploy"
	echo "	KERNEL $kernel"
	[ -n "$KADEPLOY_ENV_INITRD" ] && echo "	INITRD $KADEPLOY_ENV_INITRD"
	echo "	APPEND $KADEPLOY_ENV_KERNEL_PARAMS root=$part"
} >"$dir/boot/extlinux/extlinux.conf.tmp"
mv "$dir/boot/extlinux/extlinux.conf.tmp" "$dir/boot/extlinux/extlinux.conf"
sync
