#!/usr/bin/env bash
# Boot services side by side on this machine (root; dnsmasq and tftpd-hpa installed): kabootd's DHCP
# against dnsmasq, and kabootd's TFTP against tftpd-hpa, driven by the same load generator
# (`kanetload`) from a client network namespace joined to a server namespace by a veth pair. Nothing
# leaves the two namespaces, which are removed on exit. Prints one line per run, then the ratios.
#
#   scripts/bench-netboot.sh                      # 3 rounds of 5 s runs, 64 DHCP exchanges in flight
#   BENCH_ROUNDS=5 BENCH_SECONDS=10 BENCH_DHCP_INFLIGHT=256 scripts/bench-netboot.sh
#   BENCH_ONLY=tftp BENCH_ROUNDS=7 BENCH_TFTP_BLKSIZES="1468 512" scripts/bench-netboot.sh
#   BENCH_CPU=1 BENCH_ONLY=tftp BENCH_ROUNDS=5 BENCH_TFTP_BLKSIZES="1468 512" scripts/bench-netboot.sh
#
# The machine is shared: each round runs every pair once, servers alternating, and the ratios are
# those of the medians over the rounds (for TFTP also the median of the per-round ratios).
#
# DHCP: every exchange is a new random MAC, so the lease table grows during a run (tens of thousands
# of leases). Both servers: a /8 network (a pool of 16 million addresses, never exhausted), a PXE boot
# file, no per-packet log; dnsmasq with --no-ping (it otherwise pings each new address first). Run
# once with a lease file, once with leases in memory only. TFTP: an 8 MiB file, blksize 1468,
# lock-step ACKs (tftpd-hpa has no RFC 7440 windowsize), 1 then 64 clients each downloading it again
# and again.
set -euo pipefail
cd "$(dirname "$0")/.."
SECS="${BENCH_SECONDS:-5}"
INFLIGHT="${BENCH_DHCP_INFLIGHT:-64}"
FILE_MIB="${BENCH_FILE_MIB:-8}"
ROUNDS="${BENCH_ROUNDS:-3}"
ONLY="${BENCH_ONLY:-all}"
BLKSIZES="${BENCH_TFTP_BLKSIZES:-1468}"
# BENCH_CPU=1: run each TFTP server under `perf stat` (linux-perf) and report its CPU time per MB.
CPU="${BENCH_CPU:+1}"
[ -z "$CPU" ] || command -v perf >/dev/null || { echo "perf missing: apt-get install -y linux-perf" >&2; exit 1; }
for tool in dnsmasq in.tftpd ip; do
    command -v "$tool" >/dev/null || { echo "$tool missing: apt-get install -y dnsmasq tftpd-hpa iproute2" >&2; exit 1; }
done
# BENCH_BIN: a directory holding kabootd and kanetload already built (skips the release build).
if [ -z "${BENCH_BIN:-}" ]; then
    cargo build --release -q -p hal --bin kabootd --bin kanetload
fi
BIN="${BENCH_BIN:-$PWD/target/release}"

ID="kbn$$"
SRV="${ID}s" CLI="${ID}c" DIR="$(mktemp -d /tmp/bench-netboot.XXXXXX)"
PIDS=()
# Every server runs in its own process group (setsid), so the transfers tftpd-hpa forks, which
# ignore SIGTERM, are killed with it.
stop_group() {
    kill -TERM -- "-$1" 2>/dev/null || true
    sleep 0.2
    kill -KILL -- "-$1" 2>/dev/null || true
    wait "$1" 2>/dev/null || true
}
cleanup() {
    for pid in "${PIDS[@]}"; do stop_group "$pid"; done
    ip netns del "$SRV" 2>/dev/null || true
    ip netns del "$CLI" 2>/dev/null || true
    rm -rf "$DIR"
}
trap cleanup EXIT
ip netns add "$SRV"
ip netns add "$CLI"
ip link add "${ID}a" type veth peer name "${ID}b"
ip link set "${ID}a" netns "$SRV"
ip link set "${ID}b" netns "$CLI"
ip -n "$SRV" link set lo up
ip -n "$CLI" link set lo up
ip -n "$SRV" addr add 10.0.0.1/8 dev "${ID}a"
ip -n "$CLI" addr add 10.0.0.2/8 dev "${ID}b"
ip -n "$SRV" link set "${ID}a" up
ip -n "$CLI" link set "${ID}b" up
mkdir -p "$DIR/root"
head -c "$((FILE_MIB << 20))" /dev/urandom > "$DIR/root/kernel"

# start NAME CMD...: runs CMD in the server namespace in a new process group, remembers its PID.
start() {
    local name="$1"; shift
    ip netns exec "$SRV" setsid "$@" > "$DIR/$name.log" 2>&1 &
    PIDS+=("$!")
    sleep 0.5
    kill -0 "$!" 2>/dev/null || { echo "$name did not start:" >&2; cat "$DIR/$name.log" >&2; exit 1; }
}
stop_last() {
    stop_group "${PIDS[-1]}"
    unset 'PIDS[-1]'
}
load() { ip netns exec "$CLI" "$BIN/kanetload" --seconds "$SECS" "$@"; }
value() { sed -n "s/.*$1=\([0-9.]*\).*/\1/p"; }

declare -A R M C P Q
run_dhcp() {
    local name="$1"; shift
    rm -f "$DIR"/*.leases
    start "$name" "$@"
    local line; line="$(load dhcp --interface "${ID}b" --concurrency "$INFLIGHT")"
    stop_last
    echo "dhcp   $name: $line"
    R["dhcp_$name"]+=" $(echo "$line" | value acks_per_second)"
}
run_tftp() {
    local name="$1" clients="$2" blksize="$3"; shift 3
    start "$name" "$@"
    local key="tftp_${name}_${clients}_$blksize" line mb ms=""
    line="$(load tftp --server 10.0.0.1:69 --file kernel --clients "$clients" --blksize "$blksize")"
    mb="$(echo "$line" | value mb_per_second)"
    if [ -n "$CPU" ]; then
        # Server CPU milliseconds per MB served (children included): steadier than MB/s when other
        # work shares the cores. SIGINT ends the servers and their transfers; perf stat ignores it,
        # then writes its count once the server has exited.
        kill -INT -- "-${PIDS[-1]}" 2>/dev/null || true
        wait "${PIDS[-1]}" 2>/dev/null || true
        ms="$(awk -F, -v mb="$mb" -v s="$SECS" \
            '$3 ~ /task-clock/ && mb > 0 { printf "%.2f", $1 / (mb * s) }' "$DIR/$name.cpu")"
        line+=" server_cpu_ms_per_mb=$ms"
        C["$key"]+=" $ms"
    fi
    stop_last
    echo "tftp   $name clients=$clients blksize=$blksize: $line"
    R["$key"]+=" $mb"
    P["$key"]="$mb"
}
# pair_ratio A B: appends A's last MB/s over B's last (same round) to the per-round ratios of A.
pair_ratio() {
    Q["$1"]+=" $(awk -v a="${P[$1]}" -v b="${P[$2]}" 'BEGIN { if (b > 0) printf "%.3f", a / b }')"
}

cat > "$DIR/dhcp.yaml" <<YAML
dhcp:
  interface: ${ID}a
  server_ip: 10.0.0.1
  subnet_mask: 255.0.0.0
  lease_file: $DIR/kabootd.leases
  boot: {bios: pxelinux.0}
  pool: {start: 10.1.0.0, end: 10.255.255.250}
YAML
cat > "$DIR/tftp.yaml" <<YAML
tftp:
  interface: ${ID}a
  root: $DIR/root
  # The load generator runs its 64 clients from one address (the default cap is 8 per client).
  max_transfers_per_client: 64
YAML

grep -v lease_file "$DIR/dhcp.yaml" > "$DIR/dhcp-mem.yaml"
DNSMASQ=(dnsmasq --keep-in-foreground --conf-file=/dev/null --port=0 --user=root --pid-file=
    --interface="${ID}a" --bind-interfaces --dhcp-authoritative --no-ping --quiet-dhcp
    --dhcp-range=10.1.0.0,10.255.255.250,255.0.0.0,1h --dhcp-lease-max=1000000
    --dhcp-leasefile="$DIR/dnsmasq.leases" --dhcp-boot=pxelinux.0 --log-facility="$DIR/dnsmasq.syslog")
dhcp_kabootd() { run_dhcp kabootd "$BIN/kabootd" -c "$DIR/dhcp.yaml"; }
dhcp_dnsmasq() { run_dhcp dnsmasq "${DNSMASQ[@]}"; }
dhcp_kabootd_mem() { run_dhcp kabootd-mem "$BIN/kabootd" -c "$DIR/dhcp-mem.yaml"; }
dhcp_dnsmasq_mem() { run_dhcp dnsmasq-mem "${DNSMASQ[@]}" --leasefile-ro; }
PERF=()
[ -z "$CPU" ] || PERF=(perf stat -x, -e task-clock -o)
tftp_kabootd() { run_tftp kabootd "$1" "$2" ${CPU:+"${PERF[@]}" "$DIR/kabootd.cpu" --} "$BIN/kabootd" -c "$DIR/tftp.yaml"; }
tftp_hpa() { run_tftp tftpd-hpa "$1" "$2" ${CPU:+"${PERF[@]}" "$DIR/tftpd-hpa.cpu" --} in.tftpd --foreground --address 10.0.0.1:69 --user root --secure "$DIR/root"; }
# pair A B ARGS...: runs A then B on odd rounds, B then A on even ones.
pair() {
    if (( round % 2 )); then "$1" "${@:3}"; "$2" "${@:3}"; else "$2" "${@:3}"; "$1" "${@:3}"; fi
}
for round in $(seq "$ROUNDS"); do
    echo "round $round/$ROUNDS"
    # With a lease file: kabootd appends a journal line per lease (no fsync); dnsmasq rewrites the
    # whole file and fsyncs it on every change.
    if [ "$ONLY" != tftp ]; then
        pair dhcp_kabootd dhcp_dnsmasq
        pair dhcp_kabootd_mem dhcp_dnsmasq_mem
    fi
    if [ "$ONLY" != dhcp ]; then
        for blksize in $BLKSIZES; do
            for clients in 1 64; do
                pair tftp_kabootd tftp_hpa "$clients" "$blksize"
                pair_ratio "tftp_kabootd_${clients}_$blksize" "tftp_tftpd-hpa_${clients}_$blksize"
            done
        done
    fi
    echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
done

median() { tr ' ' '\n' | grep . | sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
for key in "${!R[@]}"; do M["$key"]="$(echo "${R[$key]}" | median)"; done
ratio() { awk -v a="${M[$1]}" -v b="${M[$2]}" 'BEGIN { if (b > 0) printf "%.2f (%s / %s)", a / b, a, b; else print "n/a" }'; }
if [ "$ONLY" != tftp ]; then
    echo "ratio  dhcp acks/s kabootd/dnsmasq, lease file: $(ratio dhcp_kabootd dhcp_dnsmasq)"
    echo "ratio  dhcp acks/s kabootd/dnsmasq, in memory:  $(ratio dhcp_kabootd-mem dhcp_dnsmasq-mem)"
fi
if [ "$ONLY" != dhcp ]; then
    for blksize in $BLKSIZES; do
        for clients in 1 64; do
            a="tftp_kabootd_${clients}_$blksize" b="tftp_tftpd-hpa_${clients}_$blksize"
            printf 'ratio  tftp MB/s kabootd/tftpd-hpa, blksize %s, %2s clients: %s, median of round ratios %s\n' \
                "$blksize" "$clients" "$(ratio "$a" "$b")" "$(echo "${Q[$a]}" | median)"
            [ -z "$CPU" ] || printf 'cpu    tftp server ms/MB, blksize %s, %2s clients: kabootd %s, tftpd-hpa %s\n' \
                "$blksize" "$clients" "$(echo "${C[$a]}" | median)" "$(echo "${C[$b]}" | median)"
        done
    done
fi
