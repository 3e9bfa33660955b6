#!/usr/bin/env bash
# Peak RSS of kaagent for a large image (KABCAST_GIB GiB, 4 by default) streamed to /dev/null through
# a 3-node chain on loopback. Prints one line per agent.
set -euo pipefail
cd "$(dirname "$0")/.."
export KABCAST_GIB="${KABCAST_GIB:-4}"
exec cargo test --release -q -p hal --test broadcast -- --ignored --exact memory::measure_agent_peak_rss --nocapture
