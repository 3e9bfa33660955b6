#!/usr/bin/env bash
# Builds the Debian package kadeploy3 (cargo-deb): the release binaries of the server, kabootd and the
# clients, the static kaagent, the sample configuration and the systemd units. Prints the .deb's path.
#
#   scripts/package.sh            # target/debian/kadeploy3_<version>-1_amd64.deb
set -euo pipefail
cd "$(dirname "$0")/.."
target="${CARGO_TARGET_DIR:-target}"

if ! cargo deb --version >/dev/null 2>&1; then
    cargo install cargo-deb --locked --version 3.8.0 >&2
fi

cargo build --release -p kadeploy3d -p kadeploy-clients -p hal --bins >&2
RUSTFLAGS="-C target-feature=+crt-static" \
    cargo build --release -p hal --bin kaagent --target x86_64-unknown-linux-gnu >&2
cp "$target/x86_64-unknown-linux-gnu/release/kaagent" "$target/release/kaagent-static"

cargo deb -p kadeploy3d --no-build --strip --fast --output "$target/debian/" >&2
ls -1t "$target"/debian/kadeploy3_*.deb | head -n 1
