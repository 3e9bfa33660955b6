#!/usr/bin/env bash
# A quiet lab window (docs/PERFORMANCE.md, window P, and window H of stop 17): three 4-VM calibrations and the
# targets predicted from the first (16 and 8 VMs, classical, UEFI), each run in ${KALAB_RUNS}NAME with its
# report in ${KALAB_RUNS}NAME.out and a line in ${KALAB_RUNS}log (KALAB_RUNS, a path prefix, default
# /tmp/hwq-). With KALAB_WINDOW_END=HH:MM:SS (UTC), a run that would not end by then (its usual length
# plus a margin) is skipped. Then: KALAB_RUNS=/tmp/hwq- scripts/lab-window-replay.py 16 c4a,c4b,c4c
# t16a,t16b,t8,tcl1,tcl2,tuefi,tuefi2,tuefi3. Needs target/debug/kalab built; KALAB_CACHE as for kalab.
set -u
cd "$(dirname "$0")/.."
export KALAB_CACHE="${KALAB_CACHE:-$PWD/target/kalab-images}"
R="${KALAB_RUNS:-/tmp/hwq-}"
END="${KALAB_WINDOW_END:-}"
# run NAME SECONDS ARGS...: SECONDS is the run's usual length on a quiet host (window P, plus the probe).
run() { name=$1; secs=$2; shift 2
  if [ -n "$END" ] && [ $(( $(date -u +%s) + secs + 20 )) -gt "$(date -u -d "$END" +%s)" ]; then
    echo "$(date -u +%T) $name skipped: would end after $END" >> "${R}log"; return; fi
  echo "$(date -u +%T) $name: $*" >> "${R}log"
  target/debug/kalab e2e --dir "${R}$name" "$@" > "${R}$name.out" 2> "${R}$name.err"
  echo "$(date -u +%T) $name rc=$? $(tail -n 1 "${R}$name.out" | python3 -c 'import json,sys; d=json.load(sys.stdin); print(d["nodes_ok"],"OK",d["nodes_ko"],"KO",d.get("deploy_seconds"),d.get("predicted_seconds"),"busy",d.get("busy_load"),"host",d.get("host"))' 2>&1)" >> "${R}log"; }
T="--busy-probe none --sim-params ${R}c4a/simulation.conf"
# The first calibration probes twice back to back (the first calibrates): the probe's own spread.
run c4a 155 --nodes 4 --busy-probe vms:12x5 --busy-probe vms:12x5
run c4b 95 --nodes 4
run t16a 115 --nodes 16 $T
run t8 65 --nodes 8 $T
run tcl1 40 --nodes 4 --boot-env classical $T
run tuefi 56 --nodes 4 --firmware uefi --boot ipxe $T
run c4c 95 --nodes 4
run t16b 115 --nodes 16 $T
run tcl2 40 --nodes 4 --boot-env classical $T
run tuefi2 56 --nodes 4 --firmware uefi --boot ipxe $T
run tuefi3 56 --nodes 4 --firmware uefi --boot ipxe $T
echo "$(date -u +%T) done" >> "${R}log"
