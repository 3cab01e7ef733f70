#!/usr/bin/env bash
# Runs the benchmark binaries given on the command line, one after another.
#
# Benchmarks print ratios against a peer measured in the same run (the PyTorch
# reference on the same shapes and threads, or the machine's own SGEMM peak), since
# the machines are shared and noisy. The PyTorch peers need Debian's python3-torch;
# when it is missing this installs the tools' packages (deploy/install-deps.sh --tools).
# bench_vae runs its own peer (tools/reference/vae_bench_peer.py via $RF_PYTHON);
# RF_BENCH_THREADS, RF_BENCH_VAE_DIM and RF_BENCH_VAE_WARMUP_MAX tune it.
set -u
export RF_PYTHON=${RF_PYTHON:-/usr/bin/python3}
if ! "$RF_PYTHON" -c 'import torch, numpy' 2>/dev/null; then
  echo "bench: PyTorch peers need python3-torch and python3-numpy; installing them"
  bash "$(dirname "$0")/../../deploy/install-deps.sh" --tools || echo "bench: without torch the peer columns are missing"
fi
status=0
for bin in "$@"; do
  echo "== $(basename "$bin")"
  "$bin" || { echo "bench: $(basename "$bin") failed (exit $?)"; status=1; }
done
exit $status
