#!/usr/bin/env bash
# Builds every fuzz target as a plain binary on the stable toolchain: no
# sanitizer, no coverage instrumentation, so nothing beyond `cargo` is needed.
# CI runs this to keep the targets compiling; running them is manual (README).
# Set CARGO_TARGET_DIR to share a target directory (see README: what it saves).
set -euo pipefail
cd "$(dirname "$0")"
cargo build --locked --bins --manifest-path Cargo.toml
