#!/bin/sh
# Regenerates truegpu.ptx from truegpu.cu without the CUDA toolkit, using
# clang's CUDA front end (Debian: apt-get install -y clang-14). The PTX
# targets sm_80 (A100) and runs on every later architecture through the
# driver's JIT. Run from this directory: ./gen.sh
set -eu
CLANG=${CLANG:-clang++-14}
"$CLANG" -x cuda --cuda-device-only --cuda-gpu-arch=sm_80 -nocudainc -nocudalib \
	-O3 -S -o truegpu.ptx truegpu.cu
echo "wrote truegpu.ptx ($(wc -c < truegpu.ptx) bytes) with $("$CLANG" --version | head -1)"
