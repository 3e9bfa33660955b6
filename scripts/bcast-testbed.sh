#!/usr/bin/env bash
# Broadcast measurements on the namespace testbed (root; iproute2, socat and udpcast installed).
#
# For each N in KABCAST_NODES it times, on links limited to KABCAST_MBIT Mbit/s with tc, a
# KABCAST_MIB MiB image sent to N receivers writing to tmpfs: a plain `socat | tee` chain (the
# practical limit of the testbed), udpcast (udp-sender / udp-receiver, defaults), then kaagent's
# chain, fault-tolerant chain, binary tree, unicast, multicast and swarm (every receiver's data
# checked by hash); then a fault-tolerant chain to the largest N with the middle receiver killed
# halfway, and the slow-link case: host 1's link at a tenth of the rate, chain against swarm.
# Prints CSV: mbit,mib,n,strategy,seconds,s_over_b,over_plain,cpu_s,sys_s,retransmits (over_plain:
# the time over the plain chain's at the same N), then mbit,mib,n,strategy,slow_host_mbit,last_s,
# fast_median_s for the slow-link case. KABCAST_STRATEGIES=plain,udpcast,chain,ft-chain,tree,unicast,
# multicast,swarm,kill,slow selects runs (udpcast runs only when named); KABCAST_MCAST_RATE caps
# multicast's rate (bytes/s).
#
#   scripts/bcast-testbed.sh                                   # 1 Gbit/s, 256 MiB, N = 1,2,4,8
#   KABCAST_MBIT=200 KABCAST_MIB=64 scripts/bcast-testbed.sh   # below the CPU limit of 2 cores
set -euo pipefail
cd "$(dirname "$0")/.."
export KABCAST_MBIT="${KABCAST_MBIT:-1000}" KABCAST_MIB="${KABCAST_MIB:-256}" KABCAST_NODES="${KABCAST_NODES:-1,2,4,8}"
exec cargo test --release -q -p hal --test broadcast -- --ignored --exact testbed::measure_testbed --nocapture --test-threads 1
