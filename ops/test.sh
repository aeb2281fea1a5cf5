#!/usr/bin/env bash
# Builds (installing what is missing) and runs every test with ctest.
#   ops/test.sh              Release build in build/
#   ops/test.sh --sanitize   the same tests under ASan+UBSan in build-asan/
set -euo pipefail
cd "$(dirname "$0")/.."
# Only the tests need these: promtool (Debian's prometheus) checks /metrics, openssl makes the
# TLS tests' certificate, kcat is the independent Kafka client of the Kafka tests.
test_packages=(prometheus openssl kcat)
ops/install-packages.sh "${test_packages[@]}"
ops/build.sh "$@"
build_dir=build
[ "${1:-}" = "--sanitize" ] && build_dir=build-asan
ctest --test-dir "$build_dir" --output-on-failure -j 2 --timeout 600
