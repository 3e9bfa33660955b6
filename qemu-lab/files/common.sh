# kalab: shell functions shared by the deploy kernel's and the environment's init (sourced).
export PATH=/usr/sbin:/usr/bin:/sbin:/bin
export HOME=/root

kalab_mounts() {
	mount -t proc proc /proc
	mount -t sysfs sysfs /sys
	mount -t devtmpfs devtmpfs /dev 2>/dev/null
	mkdir -p /dev/pts /dev/shm
	mount -t devpts -o gid=5,mode=620 devpts /dev/pts
	mount -t tmpfs tmpfs /run
	mount -t tmpfs tmpfs /tmp
}

# Brings eth0 up by DHCP (udhcpc keeps renewing in the background).
kalab_network() {
	ip link set lo up
	i=0
	while [ ! -e /sys/class/net/eth0 ] && [ $i -lt 100 ]; do
		sleep 0.1
		i=$((i + 1))
	done
	udhcpc -i eth0 -s /etc/udhcpc.script -t 20 -T 1 -A 2 -b >/dev/null 2>&1
}

# Starts dropbear on port 22, generating its host keys first.
kalab_sshd() {
	mkdir -p /etc/dropbear
	[ -f /etc/dropbear/dropbear_ed25519_host_key ] ||
		dropbearkey -t ed25519 -f /etc/dropbear/dropbear_ed25519_host_key >/dev/null 2>&1
	[ -f /etc/dropbear/dropbear_ecdsa_host_key ] ||
		dropbearkey -t ecdsa -f /etc/dropbear/dropbear_ecdsa_host_key >/dev/null 2>&1
	dropbear -r /etc/dropbear/dropbear_ed25519_host_key -r /etc/dropbear/dropbear_ecdsa_host_key -p 22 -E 2>>/run/dropbear.log
}

kalab_ip() {
	cat /run/kalab-ip 2>/dev/null || echo none
}

# Gives a root shell on the serial console, forever (init must not exit).
kalab_console_shell() {
	# A shell PID 1 gets `reboot`/`poweroff`/`halt` as SIGTERM/SIGUSR2/SIGUSR1: act on them, so that a
	# soft reboot over SSH works as on a system with a real init. `wait` lets the traps run at once.
	trap 'sync; reboot -f' TERM
	trap 'sync; poweroff -f' USR2
	trap 'sync; halt -f' USR1
	while :; do
		setsid sh -c 'exec sh -i <>/dev/ttyS0 >&0 2>&1' &
		wait $!
		sleep 1
	done
}
