#!/usr/bin/env bash
# fetch-deps.sh - on a Debian 12 build machine: fetch the Debian packages a GPU machine
# needs to build and run reelfarm's GPU check without our Debian packages and offline.
#
# What goes in vendor-debs/ (git-ignored; carry it to the GPU machine):
#   - the packages of every system header this build includes (cc -M over every C
#     source, with the build's flags, so nothing is guessed);
#   - the run-time closure (ldd) of the binaries tools/gpu/gpu-check.sh builds and runs,
#     and of protoc-c (the build generates code with it), minus the C runtime every
#     Linux has (libc6, libgcc-s1, libstdc++6) and the CUDA libraries (not from dpkg);
#   - the -dev packages of the libraries those binaries link (their link-time .so);
#   - GNU make, in case the GPU machine lacks it.
# and vendor-debs/MANIFEST: the packages, and RF_DEPS_LIBS, the -l flags those binaries
# need (their NEEDED entries). Run from the repository root (it runs make first).
# Needs apt-get and the network; about 16 MB of packages.
set -euo pipefail
cd "$(dirname "$0")/../.."
out=vendor-debs
bins="build/bin/reelfarm-engine build/tests/test_ops_cuda build/tests/test_dit_cuda
      build/tests/test_ops_cpu build/tests/test_dit build/bench/bench_dit_cuda"
echo "fetch-deps: building the binaries the GPU check runs (make -j2)"
# shellcheck disable=SC2086
make -j2 all $bins >/dev/null

files=()
echo "fetch-deps: headers included by the build (cc -M over every C source)"
pkgcfg=$(sed -n '/^PKGS :=/,/^$/p' Makefile | sed 's/^PKGS :=//; s/\\//g' | tr '\n' ' ')
# shellcheck disable=SC2086
cflags="-I. -Icommon -Ikernels -Iengine -Ibuild/gen $(pkg-config --cflags $pkgcfg) -D_GNU_SOURCE -DRF_HAVE_CUDA=1"
mapfile -t headers < <(git ls-files '*.c' | grep -v '^tools/' | while read -r f; do
  # shellcheck disable=SC2086
  cc $cflags -M "$f" 2>/dev/null || true
done | tr ' \\' '\n\n' | grep -E '^/(usr|lib)/' | grep -v '^/usr/local/' | grep -v ':$' | sort -u)
echo "fetch-deps: ${#headers[@]} system headers"
files+=("${headers[@]}")

echo "fetch-deps: run-time libraries"
libs=""
for b in $bins "$(command -v protoc-c)" "$(command -v make)"; do
  mapfile -t sos < <(ldd "$b" | awk '/=> \// {print $3}')
  files+=("${sos[@]}")
done
for b in $bins; do
  for n in $(readelf -d "$b" | sed -n 's/.*NEEDED.*\[lib\(.*\)\.so.*\]/\1/p'); do
    case "$n" in c | m | stdc++ | gcc_s | cudart | cublasLt | cublas | pthread | dl) ;;
      *) libs="$libs -l$n" ;;
    esac
  done
done
libs=$(tr ' ' '\n' <<<"$libs" | sed '/^$/d' | sort -u | tr '\n' ' ')
for n in $libs; do # link-time symlinks, from the -dev packages
  f=$(ls /usr/lib/x86_64-linux-gnu/lib"${n#-l}".so /usr/lib/x86_64-linux-gnu/*/lib"${n#-l}".so 2>/dev/null | head -n1 || true)
  [ -n "$f" ] && files+=("$f")
done

# files -> packages (both the path and its resolved target), minus the C runtime
mapfile -t pkgs < <(for f in "${files[@]}"; do echo "$f"; readlink -f "$f"; done | sort -u |
  xargs dpkg -S 2>/dev/null | sed 's/: .*//' | tr ',' '\n' | sed 's/^ *//; s/:amd64$//' |
  grep -vxE 'libc6|libc6-dev|libgcc-s1|libstdc\+\+6|linux-libc-dev|libgcc-12-dev|libstdc\+\+-12-dev|libc-dev-bin|diversion by.*' |
  sort -u)
pkgs+=(protobuf-c-compiler make)
mapfile -t pkgs < <(printf '%s\n' "${pkgs[@]}" | sort -u)

rm -rf "$out" && mkdir -p "$out"
echo "fetch-deps: apt-get download ${#pkgs[@]} packages into $out/"
(cd "$out" && apt-get download "${pkgs[@]}" 2>&1 | grep -v '^W: Download is performed unsandboxed' | tail -n 1)
{
  echo "# vendor-debs for tools/gpu/gpu-check.sh, written by tools/gpu/fetch-deps.sh"
  echo "# on $(. /etc/os-release && echo "$PRETTY_NAME"), $(date -u +%Y-%m-%d), commit $(git rev-parse --short HEAD)"
  echo "RF_DEPS_LIBS=\"$libs\""
  echo "RF_DEPS_PACKAGES=\"${pkgs[*]}\""
} >"$out/MANIFEST"
du -sh "$out" | sed 's/^/fetch-deps: /'
echo "fetch-deps: done; libraries linked: $libs"
