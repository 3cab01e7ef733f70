#!/usr/bin/env bash
# gpu-check.sh - `make gpu-check`: the whole GPU check on a GPU machine, in about 5 minutes.
#
# The machine has nvcc, the CUDA libraries and PyTorch but none of our Debian packages
# and no network: it brings them in vendor-debs/ (tools/gpu/fetch-deps.sh on a Debian 12
# build machine; git-ignored, carried along), unpacks them into a build-local prefix and
# builds there with NO_DEPS=1, pkg-config replaced by explicit flags and run paths baked
# into the binaries (nothing is installed, no LD_LIBRARY_PATH is exported). Then:
#   1. the CPU references: test_ops_cpu and test_dit (never skipped);
#   2. every CUDA op against the CPU backend (test_ops_cuda) and the whole DiT forward on
#      CUDA against the golden fixtures and the CPU (test_dit_cuda); a skip here fails;
#   3. `reelfarm-engine dit --backend cuda` on the fixture, through the NCCL path (TP=1);
#   4. bench_dit_cuda: the Wan2.1-1.3B DiT (batch 2 x 32,760 tokens) beside PyTorch.
# Prints a summary table and writes it, with the benchmark's table, to
# build/gpu-check/gpu-check-results.md (RF_GPU_OUT changes the folder). Exit 0 only when
# every step passed. Without a GPU the GPU steps report "no GPU" and the exit is 1, unless
# RF_GPU_CHECK_NO_GPU_OK=1 (to check the packaging half on a build machine).
set -uo pipefail
cd "$(dirname "$0")/../.."
root=$(pwd)
out=${RF_GPU_OUT:-build/gpu-check}
debs=${RF_GPU_DEBS:-vendor-debs}
mkdir -p "$out"
out=$(cd "$out" && pwd)
res=$out/gpu-check-results.md
prefix=$out/prefix
jobs=$(nproc 2>/dev/null || echo 4)
t_start=$(date +%s)
rows=""
failed=0
say() { echo "gpu-check: $*"; }

# step NAME TIMEOUT_S CMD...: runs CMD (log in $out/NAME.log), records status and time.
step() {
  local name=$1 tmo=$2
  shift 2
  local t0 rc note
  t0=$(date +%s)
  say "== $name"
  if declare -F "$1" >/dev/null; then # a function of this script: run it in a child bash
    timeout "$tmo" bash -c "$(declare -f "$1"); $*" >"$out/$name.log" 2>&1
  else
    timeout "$tmo" "$@" >"$out/$name.log" 2>&1
  fi
  rc=$?
  tail -n 25 "$out/$name.log"
  note=""
  if [ $rc -eq 0 ] && grep -qE '^skip ' "$out/$name.log" && [ "${allow_skip:-0}" != 1 ]; then
    note="skipped tests on a GPU machine"
    rc=99
  fi
  [ $rc -eq 124 ] && note="timed out after ${tmo}s"
  local st=ok
  if [ $rc -ne 0 ]; then
    st="FAIL ($rc)"
    failed=1
  fi
  [ -z "$note" ] && note=$(grep -E 'passed,|bench_dit_cuda: forward_s|dit: wrote' "$out/$name.log" | tail -n 1 | cut -c1-120)
  rows="$rows| $name | $st | $(($(date +%s) - t0)) | $note |"$'\n'
  return $rc
}
skip_row() { rows="$rows| $1 | skipped | 0 | $2 |"$'\n'; }

# ---- the machine ----
gpu=$(nvidia-smi --query-gpu=name,memory.total,driver_version,compute_cap --format=csv,noheader 2>/dev/null | head -n 1)
have_gpu=0
[ -n "$gpu" ] && have_gpu=1
nvcc=${NVCC:-$(command -v nvcc || ls /usr/local/cuda/bin/nvcc 2>/dev/null || true)}
py=${RF_PYTHON:-python3}
say "GPU: ${gpu:-none}; nvcc: ${nvcc:-none}; $($py -c 'import torch; print("torch", torch.__version__, "cuda", torch.version.cuda)' 2>/dev/null || echo 'no torch')"
if [ -z "$nvcc" ]; then
  say "no nvcc: the CUDA backend cannot be built here (set NVCC=/path/to/nvcc)"
  exit 1
fi
cuda_home=${CUDA_HOME:-$(dirname "$(dirname "$(readlink -f "$nvcc")")")}
pysite() { $py -c "import importlib, os; m = importlib.import_module('$1'); print(list(m.__path__)[0])" 2>/dev/null; }

# CUDA libraries: the toolkit's, else PyTorch's pip wheels (linked through symlinks).
cuda_libdir=${CUDA_LIBDIR:-}
for d in "$cuda_home/lib64" "$cuda_home/lib" "$cuda_home/targets/x86_64-linux/lib"; do
  [ -z "$cuda_libdir" ] && [ -e "$d/libcublasLt.so" ] && [ -e "$d/libcudart.so" ] && cuda_libdir=$d
done
if [ -z "$cuda_libdir" ]; then
  cuda_libdir=$out/cudalib
  mkdir -p "$cuda_libdir"
  for pair in "nvidia.cublas cublasLt" "nvidia.cublas cublas" "nvidia.cuda_runtime cudart"; do
    set -- $pair
    d=$(pysite "$1")
    f=$(ls "$d"/lib/lib"$2".so.* 2>/dev/null | head -n 1)
    [ -n "$f" ] && ln -sf "$f" "$cuda_libdir/lib$2.so"
  done
fi
# NCCL: its header at build time; its library at run time (dlopen; RF_NCCL_LIB).
nccl_inc=${NCCL_INC:-}
for d in "$cuda_home/include" /usr/include "$(pysite nvidia.nccl)/include"; do
  [ -z "$nccl_inc" ] && [ -e "$d/nccl.h" ] && nccl_inc=$d
done
if ! ldconfig -p 2>/dev/null | grep -q 'libnccl.so.2 '; then
  f=$(ls "$(pysite nvidia.nccl)"/lib/libnccl.so.2 2>/dev/null || true)
  [ -n "$f" ] && export RF_NCCL_LIB=$f
fi
arch=${CUDA_ARCH:-}
if [ -z "$arch" ] && [ $have_gpu = 1 ]; then
  cc=$(nvidia-smi --query-gpu=compute_cap --format=csv,noheader | head -n 1 | tr -d '. ')
  arch="-gencode arch=compute_$cc,code=sm_$cc"
fi
say "CUDA: $cuda_home, libraries $cuda_libdir, nccl.h ${nccl_inc:-not found}, NCCL library ${RF_NCCL_LIB:-system}, arch ${arch:-default}"

# ---- our Debian packages, unpacked into the prefix ----
unpack() {
  [ -f "$debs/MANIFEST" ] || { echo "no $debs/MANIFEST: run make gpu-deps on a Debian 12 machine and carry $debs"; return 1; }
  rm -rf "$prefix" && mkdir -p "$prefix/bin"
  for d in "$debs"/*.deb; do
    if command -v dpkg-deb >/dev/null; then
      dpkg-deb -x "$d" "$prefix" || return 1
    else
      (cd "$prefix" && ar p "$root/$d" "$(ar t "$root/$d" | grep '^data.tar')" | tar -x -a -f - 2>/dev/null ||
        ar p "$root/$d" data.tar.xz | tar -xJ) || return 1
    fi
  done
  cat >"$prefix/bin/protoc-c" <<EOS
#!/bin/sh
LD_LIBRARY_PATH="$prefix/usr/lib/x86_64-linux-gnu:$prefix/lib/x86_64-linux-gnu\${LD_LIBRARY_PATH:+:\$LD_LIBRARY_PATH}" exec "$prefix/usr/bin/protoc-c" "\$@"
EOS
  chmod +x "$prefix/bin/protoc-c"
  "$prefix/bin/protoc-c" --version
  echo "unpacked $(ls "$debs"/*.deb | wc -l) packages into $prefix"
}
export root out debs prefix jobs nvcc cuda_home cuda_libdir nccl_inc arch
step unpack 120 unpack || { say "cannot unpack $debs"; }
# shellcheck disable=SC1091
. "$debs/MANIFEST" 2>/dev/null || RF_DEPS_LIBS="-ljansson -lopenblas -lprotobuf-c -lsodium -lxxhash -lzmq"
make_bin=$(command -v make || echo "$prefix/usr/bin/make")
L=$prefix/usr/lib/x86_64-linux-gnu
B=$out/build
targets="$B/bin/reelfarm-engine $B/tests/test_ops_cpu $B/tests/test_dit $B/tests/test_ops_cuda
         $B/tests/test_dit_cuda $B/bench/bench_dit_cuda"
build() {
  # shellcheck disable=SC2086
  PATH="$prefix/bin:$PATH" "$make_bin" -j"$jobs" B="$B" NO_DEPS=1 CUDA=on NVCC="$nvcc" \
    CUDA_HOME="$cuda_home" CUDA_LIBDIR="$cuda_libdir" NCCL_INC="$nccl_inc" \
    ${arch:+CUDA_ARCH="$arch"} \
    PKG_CFLAGS="-I$prefix/usr/include -I$prefix/usr/include/x86_64-linux-gnu -I$prefix/usr/include/x86_64-linux-gnu/openblas-pthread" \
    PKG_LIBS="-L$L -L$L/openblas-pthread -Wl,--as-needed -Wl,--disable-new-dtags -Wl,-rpath,$L:$L/openblas-pthread:$prefix/lib/x86_64-linux-gnu $RF_DEPS_LIBS" \
    $targets
}
export make_bin L B targets RF_DEPS_LIBS
step build 420 build || { say "the build failed: see $out/build.log"; }

# ---- checks ----
export RF_FIXTURES=$root/tests/fixtures
allow_skip=0
step cpu-reference-ops 300 "$B/tests/test_ops_cpu"
step cpu-reference-dit 300 "$B/tests/test_dit"
if [ $have_gpu = 1 ]; then
  step cuda-ops 300 "$B/tests/test_ops_cuda"
  step cuda-dit 300 "$B/tests/test_dit_cuda"
  step engine-dit-cuda 120 "$B/bin/reelfarm-engine" dit --backend cuda --model tests/fixtures/dit/official \
    --input tests/fixtures/dit/io.safetensors --output "$out/v_cuda.safetensors"
  : >"$out/bench-table.md"
  step bench-dit-1.3b 420 env RF_PYTHON="$py" RF_BENCH_DIR="$out/dit-1.3b" \
    RF_GPU_RESULTS="$out/bench-table.md" "$B/bench/bench_dit_cuda"
  rm -rf "$out/dit-1.3b"
else
  for s in cuda-ops cuda-dit engine-dit-cuda bench-dit-1.3b; do skip_row "$s" "no GPU on this machine"; done
fi

# ---- summary ----
total=$(($(date +%s) - t_start))
{
  echo "# make gpu-check, $(date -u '+%Y-%m-%d %H:%M UTC'), commit $(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
  echo
  echo "GPU: ${gpu:-none}. nvcc: $("$nvcc" --version | tail -n 1). $($py -c 'import torch; print("PyTorch", torch.__version__)' 2>/dev/null)."
  echo
  echo "| step | status | seconds | note |"
  echo "|---|---|---|---|"
  printf '%s' "$rows"
  echo "| total | $([ $failed = 0 ] && echo ok || echo FAILED) | $total | |"
  [ -s "$out/bench-table.md" ] && cat "$out/bench-table.md"
} >"$res"
echo
cat "$res"
echo
say "results written to $res (logs: $out/*.log)"
if [ $have_gpu = 0 ]; then
  say "no GPU: the GPU steps did not run"
  [ "${RF_GPU_CHECK_NO_GPU_OK:-0}" = 1 ] && [ $failed = 0 ] && exit 0
  exit 1
fi
exit $failed
