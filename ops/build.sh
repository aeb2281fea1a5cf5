#!/usr/bin/env bash
# Installs the Debian packages the engine needs (only those missing), then configures and builds.
#   ops/build.sh              Release build into build/ (binary: build/crm)
#   ops/build.sh --sanitize   ASan+UBSan build into build-asan/
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(build-essential cmake pkg-config
  librocksdb-dev libprotobuf-dev protobuf-compiler libcpp-httplib-dev libssl-dev
  librdkafka-dev prometheus-cpp-dev libgtest-dev libgmock-dev libbenchmark-dev libjemalloc-dev
  wrk)

ops/install-packages.sh "${packages[@]}"

build_dir=build
cmake_args=(-DCMAKE_BUILD_TYPE=Release)
if [ "${1:-}" = "--sanitize" ]; then
  build_dir=build-asan
  cmake_args=(-DCMAKE_BUILD_TYPE=RelWithDebInfo -DCRM_SANITIZE=ON)
fi

cmake -S . -B "$build_dir" "${cmake_args[@]}" >/dev/null
cmake --build "$build_dir" -j "$(nproc)"
