#!/usr/bin/env bash
# The layering rules of docs/ARCHITECTURE.md, checked on the dependency graph:
# - the simulator (and so the engine and configuration) builds without the server, the store and the
#   real backends' network stacks;
# - the clients depend on neither the server nor the store;
# - qemu-lab uses the deployer only in its tests.
set -euo pipefail
cd "$(dirname "$0")/.."
status=0
forbid() { # package, crates it must not pull (normal dependencies)
    local pkg=$1
    shift
    local tree
    tree=$(cargo tree -p "$pkg" -e normal --prefix none --format '{p}' 2>/dev/null | awk '{print $1}' | sort -u)
    for c in "$@"; do
        if grep -qx "$c" <<<"$tree"; then
            echo "layer-check: $pkg depends on $c ($(cargo tree -p "$pkg" -e normal -i "$c" --prefix none 2>/dev/null | tail -n +2 | head -3 | awk '{print $1}' | paste -sd' '))"
            status=1
        fi
    done
}
forbid simulator axum russh rusqlite rustls reqwest dhcproto kadeploy-server
forbid kadeploy axum russh rusqlite rustls reqwest dhcproto kadeploy-server
forbid kadeploy-clients kadeploy-server rusqlite
forbid qemu-lab kadeploy kadeploy-server
forbid simssh kadeploy-server rusqlite axum reqwest
if [ "$status" = 0 ]; then
    echo "layer-check: ok (simulator and engine without server, store or network stacks; clients without server; qemu-lab without the deployer)"
fi
exit "$status"
