#!/usr/bin/env bash
# A quiet lab window (docs/PERFORMANCE.md, window P): three 4-VM calibrations and the targets predicted
# from the first (16 and 8 VMs, classical, UEFI), each run in /tmp/hwp-NAME with its report in
# /tmp/hwp-NAME.out and a line in /tmp/hwp-log; then: KALAB_RUNS=/tmp/hwp- scripts/lab-window-replay.py 16
# c4a,c4b,c4c t16a,t16b,t8,tcl1,tcl2,tuefi,tuefi2. Needs target/debug/kalab built; KALAB_CACHE as for kalab.
set -u
cd "$(dirname "$0")/.."
export KALAB_CACHE="${KALAB_CACHE:-$PWD/target/kalab-images}"
R=/tmp/hwp-
run() { name=$1; shift; echo "$(date -u +%T) $name: $*" >> ${R}log
  target/debug/kalab e2e --dir ${R}$name "$@" > ${R}$name.out 2> ${R}$name.err
  echo "$(date -u +%T) $name rc=$? $(tail -n 1 ${R}$name.out | python3 -c 'import json,sys; d=json.load(sys.stdin); print(d["nodes_ok"],"OK",d["nodes_ko"],"KO",d.get("deploy_seconds"),d.get("predicted_seconds"))' 2>&1)" >> ${R}log; }
T="--busy-probe none --sim-params ${R}c4a/simulation.conf"
run c4a --nodes 4
run c4b --nodes 4
run t16a --nodes 16 $T
run t8 --nodes 8 $T
run tcl1 --nodes 4 --boot-env classical $T
run tuefi --nodes 4 --firmware uefi --boot ipxe $T
run c4c --nodes 4
run t16b --nodes 16 $T
run tcl2 --nodes 4 --boot-env classical $T
run tuefi2 --nodes 4 --firmware uefi --boot ipxe $T
echo "$(date -u +%T) done" >> ${R}log
