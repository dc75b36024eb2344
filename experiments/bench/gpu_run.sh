#!/usr/bin/env bash
# The offline GPU check, as `run.sh` of the folder `deno task gpu-bundle`
# builds (README, On a GPU). On a machine with a GPU and no network:
#
#   OUT=/where/results/go bash run.sh [gpu-check options]
#
# It unpacks the folder's Deno, code and npm packages into a work folder,
# the Vulkan loader's Debian packages where the machine has no loader,
# points the loader at the NVIDIA driver when it finds none by itself, runs
# `gpu-check` under hard time limits, and leaves at most 8 files in $OUT:
# run.log (this script's log), gpu-check.json (every figure), the parity,
# bench, train and paper logs, and the rank curve plot.
#
# Environment, all optional:
#   OUT              results folder (default ./gpu-check-out)
#   GPU_WORK         work folder, emptied first
#                    (default ${TMPDIR:-/tmp}/irmae-gpu-check)
#   GPU_GL_PREFIX    a folder to unpack all the .debs into, used through
#                    LD_LIBRARY_PATH. Default: the packages whose library
#                    ldconfig does not know go into "/" as root (then
#                    ldconfig), else into $GPU_WORK/gl
#   GPU_SETUP_LIMIT  seconds for unpacking (default 45)
#   GPU_CHECK_LIMIT  seconds for gpu-check as a whole, a backstop over its
#                    own --budget (default 400)
#   GPU_SETUP_ONLY=1 stop after the setup
# Exit code: gpu-check's (0 every part passed, 1 one failed), 3 when the
# setup failed, 124 when gpu-check ran over GPU_CHECK_LIMIT.
set -uo pipefail

BUNDLE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
OUT="${OUT:-$PWD/gpu-check-out}"
mkdir -p "$OUT"
OUT="$(cd "$OUT" && pwd)"
WORK="${GPU_WORK:-${TMPDIR:-/tmp}/irmae-gpu-check}"
SETUP_LIMIT="${GPU_SETUP_LIMIT:-45}"
CHECK_LIMIT="${GPU_CHECK_LIMIT:-400}"
export BUNDLE WORK

say() { printf 'run.sh: %s\n' "$*"; }

# Decompresses an .xz file to stdout: xz, else python3's lzma.
unxz_cat() {
  if command -v xz >/dev/null 2>&1; then
    xz -dc "$1"
  else
    python3 -c 'import lzma, shutil, sys; shutil.copyfileobj(lzma.open(sys.argv[1]), sys.stdout.buffer)' "$1"
  fi
}

# Unpacks a .deb into a folder: dpkg-deb, else python3 (ar + tarfile).
deb_extract() {
  if command -v dpkg-deb >/dev/null 2>&1; then
    dpkg-deb -x "$1" "$2"
  else
    python3 - "$1" "$2" <<'PY'
import io, sys, tarfile
path, dest = sys.argv[1:3]
data = open(path, "rb").read()
if data[:8] != b"!<arch>\n":
    sys.exit(f"{path}: not a Debian package")
pos = 8
while pos + 60 <= len(data):
    name = data[pos:pos + 16].decode().strip().rstrip("/")
    size = int(data[pos + 48:pos + 58].decode().strip())
    body = data[pos + 60:pos + 60 + size]
    pos += 60 + size + size % 2
    if name.startswith("data.tar"):
        if name.endswith(".zst"):
            sys.exit(f"{path}: zstd data needs dpkg-deb")
        tar = tarfile.open(fileobj=io.BytesIO(body), mode="r:*")
        if hasattr(tarfile, "tar_filter"):
            tar.extractall(dest, filter="tar")
        else:
            tar.extractall(dest)
PY
  fi
}

# Deno, the tree and the npm packages into $WORK.
setup() {
  set -euo pipefail
  mkdir -p "$WORK/bin" "$WORK/tree" "$WORK/tmp"
  unxz_cat "$BUNDLE/deno.xz" >"$WORK/bin/deno.partial"
  chmod +x "$WORK/bin/deno.partial"
  mv "$WORK/bin/deno.partial" "$WORK/bin/deno"
  unxz_cat "$BUNDLE/src.tar.xz" | tar -xf - -C "$WORK/tree"
  unxz_cat "$BUNDLE/npm.tar.xz" | tar -xf - -C "$WORK/tree"
  mv "$WORK/tree/deno_dir" "$WORK/deno_dir"
  "$WORK/bin/deno" --version
}
export -f setup unxz_cat

# Each Debian package and the library that shows a machine has it.
DEB_LIBS="libvulkan1:libvulkan.so.1 libglvnd0:libGLdispatch.so.0 libegl1:libEGL.so.1
  libgl1:libGL.so.1 libglx0:libGLX.so.0 libopengl0:libOpenGL.so.0 libgles2:libGLESv2.so.2"

# The Vulkan loader and its GL companions: the bundle's .debs of those the
# machine lacks (all of them into GPU_GL_PREFIX when that is set).
vulkan_loader() {
  local prefix="${GPU_GL_PREFIX:-}" known pair wanted=()
  known="$(ldconfig -p 2>/dev/null || true)"
  for pair in $DEB_LIBS; do
    if [ -n "$prefix" ] || ! grep -q "^[[:space:]]*${pair#*:} (" <<<"$known"; then
      wanted+=("${pair%%:*}")
    fi
  done
  if [ ${#wanted[@]} -eq 0 ]; then
    say "the machine has the Vulkan loader and its GL companions:" \
      "$(grep -m1 'libvulkan\.so\.1 (' <<<"$known" | sed 's/.*=> //')"
    return 0
  fi
  if [ -z "$prefix" ]; then
    if [ "$(id -u)" = 0 ]; then prefix=/; else prefix="$WORK/gl"; fi
  fi
  mkdir -p "$prefix"
  for pkg in "${wanted[@]}"; do
    deb_extract "$(ls "$BUNDLE"/debs/"${pkg}"_*.deb | head -n 1)" "$prefix" || return 1
  done
  if [ "$prefix" = / ]; then
    ldconfig
    say "unpacked ${wanted[*]} into / (ldconfig)"
  else
    local libs="$prefix/usr/lib/x86_64-linux-gnu:$prefix/lib/x86_64-linux-gnu"
    export LD_LIBRARY_PATH="$libs${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
    say "unpacked ${wanted[*]} into $prefix (LD_LIBRARY_PATH)"
  fi
}

# The NVIDIA driver's Vulkan ICD and libraries, when the loader would miss them.
nvidia_driver() {
  if command -v nvidia-smi >/dev/null 2>&1; then
    timeout 20 nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>&1 |
      sed 's/^/run.sh: nvidia-smi: /'
  else
    say "no nvidia-smi"
  fi
  for d in /usr/local/nvidia/lib64 /usr/local/nvidia/lib; do
    if [ -e "$d/libGLX_nvidia.so.0" ] && ! ldconfig -p 2>/dev/null | grep -q libGLX_nvidia.so.0; then
      export LD_LIBRARY_PATH="${LD_LIBRARY_PATH:+$LD_LIBRARY_PATH:}$d"
      say "driver libraries from $d (LD_LIBRARY_PATH)"
    fi
  done
  if [ -n "${VK_DRIVER_FILES:-}${VK_ICD_FILENAMES:-}" ]; then
    say "VK_DRIVER_FILES=${VK_DRIVER_FILES:-} VK_ICD_FILENAMES=${VK_ICD_FILENAMES:-} (given)"
    return 0
  fi
  local dirs="/etc/vulkan/icd.d /usr/share/vulkan/icd.d /usr/local/share/vulkan/icd.d /usr/local/etc/vulkan/icd.d"
  local found
  found="$(ls $dirs 2>/dev/null | grep -i nvidia | head -n 1 || true)"
  if [ -n "$found" ]; then
    say "the loader finds the NVIDIA ICD ($found) by itself"
    return 0
  fi
  local icd=""
  for f in /usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json \
    /usr/local/nvidia/etc/vulkan/icd.d/nvidia_icd.json \
    /usr/local/nvidia/vulkan/icd.d/nvidia_icd.json; do
    if [ -f "$f" ]; then icd="$f" && break; fi
  done
  if [ -z "$icd" ] && command -v nvidia-smi >/dev/null 2>&1; then
    icd="$(timeout 20 find /usr /etc /opt -name 'nvidia_icd*.json' 2>/dev/null | head -n 1 || true)"
  fi
  if [ -n "$icd" ]; then
    export VK_DRIVER_FILES="$icd" VK_ICD_FILENAMES="$icd"
    say "VK_DRIVER_FILES=$icd"
    local egl="${icd%/vulkan/icd.d/*}/glvnd/egl_vendor.d/10_nvidia.json"
    if [ -f "$egl" ]; then
      export __EGL_VENDOR_LIBRARY_FILENAMES="$egl"
    fi
  else
    say "no NVIDIA Vulkan ICD found; the loader takes what it finds:" \
      "$(find $dirs -maxdepth 1 -name '*.json' 2>/dev/null | tr '\n' ' ')"
  fi
}

# Copies the results into $OUT: at most 8 files, none over 4 MiB.
collect() {
  local result="$WORK/result"
  for f in gpu-check.json parity.log bench.log train.log paper.log; do
    if [ -f "$result/$f" ]; then
      tail -c 4194304 "$result/$f" >"$OUT/$f"
    fi
  done
  for plot in "$result/shapes-paper/rank_history.png" "$result/shapes/rank_history.png"; do
    if [ -f "$plot" ]; then
      cp "$plot" "$OUT/rank_history.png"
      break
    fi
  done
}

# When Deno found no adapter, or a software one: what Vulkan sees, for the
# next try.
diagnose() {
  say "no GPU adapter; what the machine has:"
  ldconfig -p 2>/dev/null | grep -iE 'vulkan|nvidia|GLdispatch|GLX' | sed 's/^/run.sh:   /'
  timeout 20 find /usr/local/nvidia /usr/share/vulkan /etc/vulkan /usr/lib/x86_64-linux-gnu/nvidia \
    -maxdepth 4 \( -name '*.json' -o -name 'libGLX_nvidia*' \) 2>/dev/null | sed 's/^/run.sh:   /'
  say "the adapter probe with VK_LOADER_DEBUG=error,warn,info:"
  (cd "$WORK/tree" && VK_LOADER_DEBUG=error,warn,info timeout 30 "$WORK/bin/deno" run -A --cached-only \
    experiments/gpu_check.ts --probe-adapter 2>&1 | tail -n 60 | sed 's/^/run.sh:   /')
}

main() {
  say "$(date -u +%FT%TZ) on $(uname -srm), $(nproc) CPUs"
  if command -v python3 >/dev/null 2>&1; then
    python3 -c 'import json, sys; b = json.load(open(sys.argv[1])); print("run.sh: bundle of commit", b["commit"], "built", b["builtAt"], ("with changed files: " + " ".join(b["changedFiles"])) if b["changedFiles"] else "")' "$BUNDLE/bundle.json"
  fi
  rm -rf "$WORK"
  mkdir -p "$WORK"
  local t0=$SECONDS
  if ! timeout -k 5 "$SETUP_LIMIT" bash -c setup; then
    say "setup failed or ran over ${SETUP_LIMIT} s"
    return 3
  fi
  if ! vulkan_loader; then
    say "could not unpack the Vulkan loader"
    return 3
  fi
  nvidia_driver
  export DENO_DIR="$WORK/deno_dir" DENO_NO_UPDATE_CHECK=1 NO_COLOR=1
  export TMPDIR="$WORK/tmp" PATH="$WORK/bin:$PATH"
  if [ -z "${XDG_RUNTIME_DIR:-}" ]; then
    mkdir -p -m 700 "$WORK/xdg"
    export XDG_RUNTIME_DIR="$WORK/xdg"
  fi
  say "setup took $((SECONDS - t0)) s; LD_LIBRARY_PATH=${LD_LIBRARY_PATH:-}"
  if [ "${GPU_SETUP_ONLY:-}" = 1 ]; then
    say "GPU_SETUP_ONLY=1: stopping after the setup"
    return 0
  fi
  t0=$SECONDS
  (cd "$WORK/tree" && timeout -k 10 "$CHECK_LIMIT" "$WORK/bin/deno" run -A --cached-only \
    experiments/gpu_check.ts --out "$WORK/result" --bundle "$BUNDLE/bundle.json" "$@")
  local code=$?
  say "gpu-check exit code $code after $((SECONDS - t0)) s"
  if ! grep -A1 '"adapter": {' "$WORK/result/gpu-check.json" 2>/dev/null | grep -q '"passed"'; then
    diagnose
  fi
  collect
  say "results in $OUT: $(ls "$OUT" | tr '\n' ' ')"
  return "$code"
}

main "$@" 2>&1 | tee "$OUT/run.log"
exit "${PIPESTATUS[0]}"
