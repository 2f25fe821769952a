#!/usr/bin/env bash
# Install every Debian package the build, tests and benchmarks need.
# Idempotent: when everything is present it does nothing (no network);
# otherwise it runs `apt-get update` once and installs what is missing.
set -euo pipefail

PACKAGES=(
  build-essential cmake pkg-config   # toolchain
  libxxhash-dev                      # checksums and hashing (xxhash)
  liblz4-dev                         # SST block compression
  libcmocka-dev                      # unit tests
  libjemalloc-dev                    # allocator of the binaries
  libjansson-dev                     # JSON (MODE.json, checkpoints, --json output)
  clang                              # fuzz targets (libFuzzer) and ASan builds
  redis-tools                        # redis-cli for the serve integration test
  python3-redis                      # redis-py for the real-client integration test
  curl                               # scrapes /metrics in the metrics integration test
)

missing=()
for p in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "setup: all ${#PACKAGES[@]} packages present"
  exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  SUDO="sudo"
fi
echo "setup: installing ${missing[*]}"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
echo "setup: done"
