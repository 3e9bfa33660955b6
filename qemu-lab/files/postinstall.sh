#!/bin/sh
# kalab-linux postinstall: marks the deployed tree with the environment's name and the node's hostname.
set -e
dir="${KADEPLOY_ENV_EXTRACTION_DIR:?KADEPLOY_ENV_EXTRACTION_DIR is not set}"
mkdir -p "$dir/etc"
echo "${KADEPLOY_ENV:-unknown} $(hostname)" >"$dir/etc/kalab-marker"
