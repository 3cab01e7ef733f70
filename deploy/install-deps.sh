#!/usr/bin/env bash
# Installs the Debian 12 packages reelfarm needs to build, test and run (python3-numpy:
# the weight converter in tools/convert, which the tests run; prometheus: promtool and a
# Prometheus server for the metrics tests; its system service is disabled when this
# script installs it, so no Prometheus keeps running on the machine).
#
#   deploy/install-deps.sh           build + test packages (what CI and `make test` need)
#   deploy/install-deps.sh --tools   also the Python tools' packages (torch, numpy,
#                                    sentencepiece) used by tools/ and `make bench`
#
# Idempotent: packages already installed are skipped. As root it runs apt-get itself;
# as a user with sudo it uses sudo; otherwise it prints the exact command to run.
set -euo pipefail

PKGS=(
  build-essential pkg-config
  libzmq3-dev libprotobuf-c-dev protobuf-c-compiler
  libsqlite3-dev libyaml-dev libjansson-dev libxxhash-dev libsodium-dev
  libcurl4-openssl-dev
  libavcodec-dev libavformat-dev libavutil-dev libswscale-dev
  libopenblas-dev libmicrohttpd-dev
  ffmpeg clang-format cppcheck prometheus
  python3 python3-numpy
)
TOOL_PKGS=(python3-torch python3-numpy python3-sentencepiece)

if [ "${1:-}" = "--tools" ]; then
  PKGS+=("${TOOL_PKGS[@]}")
fi

missing=()
for p in "${PKGS[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#PKGS[@]} packages present"
  exit 0
fi

cmd="apt-get install -y --no-install-recommends ${missing[*]}"
echo "install-deps: installing ${missing[*]}"
if [ "$(id -u)" -eq 0 ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q || true
  $cmd
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
  export DEBIAN_FRONTEND=noninteractive
  sudo -E apt-get update -q || true
  sudo -E $cmd
else
  echo "install-deps: not root and no passwordless sudo. Run this as root, then retry:" >&2
  echo "  apt-get update && $cmd" >&2
  exit 1
fi

# The tests start their own Prometheus on a free loopback port; the package's service
# (port 9090, started by apt where systemd runs) is not wanted on a build machine.
if [[ " ${missing[*]} " == *" prometheus "* ]] && [ -d /run/systemd/system ]; then
  echo "install-deps: disabling the prometheus service the package started (the tests run their own)"
  if [ "$(id -u)" -eq 0 ]; then
    systemctl disable --now prometheus.service || true
  else
    sudo -n systemctl disable --now prometheus.service || true
  fi
fi
