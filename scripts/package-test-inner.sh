#!/bin/bash
# Runs inside package-test.sh's scratch root (chroot into an overlay of /, private network with only
# loopback, private PID namespace): installs the package, starts the units' commands, deploys.
set -euo pipefail
fail() { echo "package-test: FAIL: $*" >&2; exit 1; }
export DEBIAN_FRONTEND=noninteractive

dpkg -i /kadeploy3.deb
dpkg -s kadeploy3 | grep -q '^Status: install ok installed' || fail "dpkg did not install kadeploy3"
id deploy >/dev/null || fail "postinst created no deploy user"
for f in /usr/sbin/kadeploy3d /usr/sbin/kabootd /usr/bin/kadeploy3 /usr/bin/kaenv3 /usr/bin/karights3 \
         /usr/bin/kastat3 /usr/bin/kanodes3 /usr/bin/kareboot3 /usr/bin/kapower3 /usr/bin/kaconsole3; do
    [ -x "$f" ] || fail "$f missing"
done
readelf -d /usr/lib/kadeploy3/kaagent | grep -q NEEDED && fail "kaagent is not static"
grep -q '^/etc/kadeploy3/server.conf$' /var/lib/dpkg/info/kadeploy3.conffiles || fail "server.conf is no conffile"

unit_dir=""
for d in /usr/lib/systemd/system /lib/systemd/system; do
    [ -f "$d/kadeploy3d.service" ] && unit_dir=$d && break
done
[ -n "$unit_dir" ] || fail "no kadeploy3d.service installed"

# `key` of a unit file's [Service] section.
unit_key() { sed -n "s/^$2=//p" "$unit_dir/$1" | tail -n 1; }

# Starts a unit's ExecStart the way systemd does: as its User, with its AmbientCapabilities and its
# State/Logs/Cache/RuntimeDirectory created and owned by that user. Prints the PID.
start_unit() {
    local unit=$1 user caps exec dirs
    user=$(unit_key "$unit" User)
    [ -n "$user" ] && [ "$user" != root ] || fail "$unit does not run as an unprivileged user"
    caps=$(unit_key "$unit" AmbientCapabilities | tr 'A-Z' 'a-z' | sed 's/cap_/+/g; s/ /,/g')
    exec=$(unit_key "$unit" ExecStart)
    for key in StateDirectory LogsDirectory CacheDirectory RuntimeDirectory; do
        for d in $(unit_key "$unit" "$key"); do
            case $key in
                StateDirectory) dir=/var/lib/$d ;; LogsDirectory) dir=/var/log/$d ;;
                CacheDirectory) dir=/var/cache/$d ;; RuntimeDirectory) dir=/run/$d ;;
            esac
            mkdir -p "$dir" && chown "$user:$user" "$dir"
        done
    done
    local setpriv=(setpriv --reuid="$user" --regid="$user" --init-groups)
    if [ -n "$caps" ]; then
        setpriv+=(--inh-caps="$caps" --ambient-caps="$caps")
    fi
    # shellcheck disable=SC2086
    "${setpriv[@]}" $exec > "/tmp/$unit.log" 2>&1 &
    echo $!
}

wait_port() { # proto port
    for _ in $(seq 1 100); do
        if [ "$1" = tcp ] && ss -Hltn "sport = :$2" | grep -q .; then return 0; fi
        if [ "$1" = udp ] && ss -Hlun "sport = :$2" | grep -q .; then return 0; fi
        sleep 0.2
    done
    return 1
}

# kabootd as `deploy` on ports 69 and 80 (CAP_NET_BIND_SERVICE from the unit), serving the TFTP root.
echo "kadeploy3 package test" > /var/lib/tftpboot/probe.txt
boot_pid=$(start_unit kabootd.service)
wait_port udp 69 || { cat /tmp/kabootd.service.log; fail "kabootd did not bind 69"; }
wait_port tcp 80 || { cat /tmp/kabootd.service.log; fail "kabootd did not bind 80"; }
[ "$(stat -c %U /proc/$boot_pid)" = deploy ] || fail "kabootd does not run as deploy"
(cd /tmp && tftp 127.0.0.1 -c get probe.txt) && cmp /tmp/probe.txt /var/lib/tftpboot/probe.txt \
    || fail "TFTP fetch from kabootd"
curl -fsS http://127.0.0.1/probe.txt | cmp - /var/lib/tftpboot/probe.txt || fail "HTTP fetch from kabootd"
echo "package-test: kabootd (user deploy) served probe.txt over TFTP and HTTP"

# kadeploy3d as `deploy` with the shipped configuration (the simulated 300-node cluster). The sample
# authenticates local users by ident; with no identd in this scratch root, the test turns on the sample's
# single-user loopback ACL line (as its comment says), which kadeploy3d warns about.
sed -i 's/^  # acl: {/  acl: {/' /etc/kadeploy3/server.conf
grep -q '^  acl: {' /etc/kadeploy3/server.conf || fail "the sample has no loopback ACL line"
server_pid=$(start_unit kadeploy3d.service)
wait_port tcp 25300 || { cat /tmp/kadeploy3d.service.log; fail "kadeploy3d did not listen on 25300"; }
[ "$(stat -c %U /proc/$server_pid)" = deploy ] || fail "kadeploy3d does not run as deploy"

export USER=root
karights3 -a -m '*' -p '*' -u root
mkdir -p /envs     # the sample's security/server_file_directories
cat > /tmp/env.yml <<'YAML'
name: debian12
version: 1
visibility: public
os: linux
filesystem: ext4
image: {file: 'server:///envs/debian12.tgz', kind: tar, compression: gzip}
boot: {kernel: /vmlinuz, initrd: /initrd.img}
YAML
head -c 1048576 /dev/urandom | gzip > /envs/debian12.tgz
kaenv3 -a /tmp/env.yml
seq -f 'node-%g.sim.kadeploy' 1 300 > /tmp/nodes
kadeploy3 -e debian12 -f /tmp/nodes -o /tmp/ok -n /tmp/ko -V 1 || true
ok=$(wc -l < /tmp/ok)
[ "$ok" = 300 ] || { cat /tmp/kadeploy3d.service.log | tail -20; fail "$ok of 300 nodes deployed"; }
kastat3 | tail -n 1 | grep -q debian12 || fail "kastat3 shows no deployment"
[ -s /var/lib/kadeploy3/kadeploy3.sqlite ] || fail "no database in /var/lib/kadeploy3"
[ -s /var/log/kadeploy3/kadeploy.log ] || fail "kadeploy3d wrote no logs/logfile"
[ "$(cat /run/kadeploy3/kadeploy3d.pid)" = "$server_pid" ] || fail "the pidfile does not hold kadeploy3d's PID"
echo "package-test: kadeploy3d (user deploy) deployed $ok of 300 simulated nodes"

# The unit's ExecReload (SIGHUP): the server reloads and keeps serving.
reload=$(unit_key kadeploy3d.service ExecReload | sed "s/\$MAINPID/$server_pid/")
$reload
sleep 1
kill -0 "$server_pid" || fail "kadeploy3d died on ExecReload"
kastat3 >/dev/null || fail "kadeploy3d does not answer after ExecReload"

kill -TERM "$server_pid" "$boot_pid"
for _ in $(seq 1 100); do kill -0 "$server_pid" 2>/dev/null || break; sleep 0.2; done
kill -0 "$server_pid" 2>/dev/null && fail "kadeploy3d ignored SIGTERM"
[ ! -e /run/kadeploy3/kadeploy3d.pid ] || fail "kadeploy3d left its pidfile"
dpkg --purge kadeploy3 >/dev/null
[ ! -e /usr/sbin/kadeploy3d ] && [ ! -e /var/lib/kadeploy3 ] || fail "purge left files"
echo "package-test: OK"
