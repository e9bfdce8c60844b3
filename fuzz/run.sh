#!/usr/bin/env bash
# Runs every fuzz target (or those named) for SECONDS each, on a scratch copy of its corpus and
# kept crashers, and fails on the first crash or hang. Usage: fuzz/run.sh SECONDS [TARGET...]
# Needs cargo-fuzz (installed when absent). libFuzzer's instrumentation flags are nightly-only:
# RUSTC_BOOTSTRAP lets the stable toolchain take them. No sanitizer: the code is safe Rust.
set -euo pipefail
cd "$(dirname "$0")"
seconds=${1:?usage: fuzz/run.sh SECONDS [TARGET...]}
shift
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
export RUSTC_BOOTSTRAP=1
export CARGO_TARGET_DIR="${CARGO_FUZZ_TARGET_DIR:-$HOME/.cache/tessera/fuzz-target}"
targets=("$@")
[ ${#targets[@]} -gt 0 ] || mapfile -t targets < <(cargo fuzz list)
cargo fuzz build --sanitizer none -O || { echo "fuzz: the build failed"; exit 1; }
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
for target in "${targets[@]}"; do
    mkdir -p "$scratch/$target"
    for kept in corpus regressions; do
        [ ! -d "$kept/$target" ] || cp -r "$kept/$target/." "$scratch/$target/"
    done
    echo "fuzz: $target for ${seconds}s"
    # -timeout: an input taking longer than 10 s is a hang; -rss_limit_mb: one that needs 2 GiB is a bug.
    status=0
    cargo fuzz run --sanitizer none -O "$target" "$scratch/$target" -- \
        -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
        >"$scratch/$target.log" 2>&1 || status=$?
    grep -E "^(#[0-9]+.*DONE|stat::number_of_executed_units)" "$scratch/$target.log" || true
    if [ "$status" -ne 0 ]; then
        tail -40 "$scratch/$target.log"
        echo "fuzz: $target failed; the input is in fuzz/artifacts/$target/"
        exit 1
    fi
done
