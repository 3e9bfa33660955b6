#!/usr/bin/env bash
# Broadcast measurements on the namespace testbed (root; iproute2, socat and udpcast installed), with
# the simulator's prediction next to every row.
#
# Before each N, the host's own speed through namespace hops without tc (as many concurrent one-hop
# socat copies as cores: hop_mbit; the same across one uplink: uplink_hop_mbit) and through each
# tool whose cost is not the socat hop's (kaagent's multicast, udpcast, the plain chain, kaagent's
# chain: metered when any of its chain, ft-chain, tree or unicast runs; with tc at a
# rate they never reach, so that each datagram pays its qdisc work as on the testbed; to
# meter_small and meter_large receivers: KABCAST_METER_RECEIVERS, default cores and 4 x cores, or
# N where N is more (since stop 19: a row's N is metered, not extrapolated to),
# a KABCAST_METER_MIB image, default 64, links with tc at KABCAST_METER_MBIT, default 10000, 0: none:
# delivered Mbit/s in <tool>_small_mbit, <tool>_large_mbit). Every meter, the hop meter too, reads
# KABCAST_METER_REPEAT times (default 3) before each N (the tool meter up to twice that while some
# tool's readings spread more than 40% of their median, since stop 19; meter_repeats: its readings):
# its column is the readings' median, and the
# last columns (hop_spread_pct … udpcast_alone_spread_pct, since stop 17) their spread,
# 100 · (max − min) / median.
# Then, for each N in
# KABCAST_NODES, on links limited to KABCAST_MBIT Mbit/s with tc, a KABCAST_MIB MiB image sent to N
# receivers writing to tmpfs: a plain `socat | tee` chain in topology order (the practical limit of
# the testbed), udpcast (udp-sender / udp-receiver, defaults; the time of the transfer, without the
# rendezvous), then kaagent's chain, the chain in switch-oblivious order (two-level only),
# fault-tolerant chain, binary tree, unicast, multicast and swarm (every receiver's data checked by
# hash); then a fault-tolerant chain to the largest N with the middle receiver killed halfway, and
# (flat only) the slow-link case: host 1's link at a tenth of the rate, chain against swarm.
#
# KABCAST_TOPOLOGY=flat|two-level (or both: flat,two-level, one after the other); two-level puts the
# server on a core bridge and the hosts, interleaved, on KABCAST_SWITCHES leaf bridges (default 2)
# joined to the core by uplinks of KABCAST_UPLINK_MBIT each way (default: KABCAST_MBIT).
# KABCAST_STRATEGIES=plain,udpcast,chain,chain-oblivious,ft-chain,tree,unicast,multicast,swarm,kill,slow
# selects runs; KABCAST_MCAST_RATE caps multicast's rate (bytes/s). KABCAST_REPEAT=R (default 1) runs
# every selected tool R times at each N, interleaved tool by tool: `seconds` is then the median,
# `cpu_s`, `sys_s` and `retransmits` the mean per run, and the last columns give the spread.
#
# Prints CSV: topology,switches,uplink_mbit,mbit,mib,n,strategy,seconds,s_over_b,over_plain,cpu_s,
# sys_s,retransmits,hop_mbit,uplink_hop_mbit,meter_mbit,meter_small,meter_large,plain_small_mbit,
# plain_large_mbit,udpcast_small_mbit,udpcast_large_mbit,mcast_small_mbit,mcast_large_mbit,
# udpcast_rcvbuf,chain_small_mbit,chain_large_mbit,repeats,seconds_min,seconds_max,steal_s,
# context_switches,cpu_waiting_s,server_wait_s,ksoftirqd_s,bed_hosts,hop_spread_pct,uplink_hop_spread_pct,
# meter_repeats,<tool>_<count>_spread_pct…,udpcast_alone_spread_pct,swarm_seed,predicted_s,error_pct (over_plain: the time over the
# plain chain's at the same N; predicted_s: `kasim testbed`, the simulator's models given the
# testbed's parameters; error_pct: prediction over measurement), then the slow-link lines
# mbit,mib,n,strategy,slow_host_mbit,last_s,fast_median_s; on standard error, how many rows the
# simulator predicted within 10%.
#
#   scripts/bcast-testbed.sh                                   # 1 Gbit/s, 256 MiB, N = 1,2,4,8, flat
#   KABCAST_MBIT=200 KABCAST_MIB=64 scripts/bcast-testbed.sh   # below the CPU limit of 2 cores
#   KABCAST_TOPOLOGY=flat,two-level KABCAST_NODES=2,4,8,16 scripts/bcast-testbed.sh
set -euo pipefail
cd "$(dirname "$0")/.."
export KABCAST_MBIT="${KABCAST_MBIT:-1000}" KABCAST_MIB="${KABCAST_MIB:-256}" KABCAST_NODES="${KABCAST_NODES:-1,2,4,8}"
topologies="${KABCAST_TOPOLOGY:-flat}"
# udp-receiver's --rcvbuf (KABCAST_UDPCAST_RCVBUF, default 4 MiB) is capped by this limit; a stock
# kernel's 212,992 bytes cannot hold udp-sender's window and udpcast then loses and re-sends blocks.
want="${KABCAST_UDPCAST_RCVBUF:-4194304}"
if [ "$(sysctl -n net.core.rmem_max)" -lt "$want" ]; then
    echo "bcast-testbed: raising net.core.rmem_max to $want for udpcast's receivers" >&2
    sysctl -q -w net.core.rmem_max="$want"
fi
cargo build -q -p simulator --bin kasim
cargo test --release -q -p hal --test broadcast --no-run
# The measurements first, the predictions after them (a prediction computed while the next runs
# go would take the host's processor from them). The raw CSV is kept (its path on standard error).
raw=$(mktemp --suffix=.csv /tmp/bcast-testbed-XXXXXX)
echo "bcast-testbed: raw measurements in $raw" >&2
status=0
for topology in ${topologies//,/ }; do
    KABCAST_TOPOLOGY="$topology" cargo test --release -q -p hal --test broadcast -- \
        --ignored --exact measure::measure_testbed --nocapture --test-threads 1 || status=$?
done >"$raw"
cargo run -q -p simulator --bin kasim -- testbed "$raw"
exit "$status"
