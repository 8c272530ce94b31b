#!/usr/bin/env bash
# The device validator in an emulated Raspberry Pi OS (Debian Bookworm, Python 3.11) userland: arm64 and/or armhf.
#
# Builds (once; cached outside the repository) a Bookworm rootfs per architecture with debootstrap, runs it under
# qemu-user through binfmt_misc, installs this checkout with the pip line the README gives Pi users, and runs
# tfpose-validate's accuracy, parity and speed modes on an exported int8 student and a few annotated images. The
# same model then runs here (x86_64) on the same reference crops, and the outputs are compared in int8 steps.
# Emulated timings say nothing about a Pi's speed. Needs root (chroot, mounts), Debian/Ubuntu apt, and network
# access to a Debian mirror and PyPI.
#
#   bash scripts/pi_smoke.sh                                  # arm64, android_assets/model.tflite, quickstart data
#   bash scripts/pi_smoke.sh --arch all --model runs/quickstart/student_int8.tflite
#
# Exit status: 0 passed; 1 a check failed (the install, the validator, or parity); 2 bad arguments or missing
# inputs; 3 this machine cannot run the emulation (not root, no binfmt_misc, mirror or PyPI unreachable, qemu
# crashed twice): not a verdict on the code.
set -euo pipefail

ROOT_DIR=$(cd "$(dirname "$0")/.." && pwd)
CACHE=${TFPOSE_PI_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/tfpose/pi-rootfs}
SUITE=bookworm
ARCHES=()
MODEL=android_assets/model.tflite
REFERENCE=
DATA_ROOT=runs/data/synthetic
ANNOTATIONS=
IMAGES=
MAX_IMAGES=20
RUNS=10
OUT=runs/pi_smoke
REBUILD=0
MAX_STEPS=1
HOST_PYTHON=${PYTHON:-}

usage() {
  cat <<'EOF'
usage: bash scripts/pi_smoke.sh [options]
  --arch arm64|armhf|all   userland(s) to emulate; repeatable (default: arm64)
  --model FILE             exported int8 tfpose .tflite (default: android_assets/model.tflite)
  --reference FILE         its reference outputs (default: FILE with .reference.npz)
  --annotations FILE       COCO keypoint annotations for accuracy (default: DATA/annotations/person_keypoints_val.json)
  --images DIR             their images (default: DATA/images/val)
  --data DIR               dataset root for the defaults above (default: runs/data/synthetic, made by tfpose pipeline)
  --max-images N           score the first N annotated images only (default: 20; 0: all)
  --runs N                 timed runs per latency setting (default: 10)
  --max-steps N            largest int8-step difference allowed against this machine's run (default: 1)
  --out DIR                reports, logs and summary (default: runs/pi_smoke)
  --rebuild                rebuild the cached base rootfs
environment: TFPOSE_PI_CACHE (rootfs cache; default ~/.cache/tfpose/pi-rootfs), TFPOSE_PI_MIRROR (Debian mirror),
TFPOSE_PI_CPU_ARM64 / TFPOSE_PI_CPU_ARMHF (qemu CPU; default cortex-a72 / cortex-a15), PYTHON (this machine's
Python with the project and a TFLite runtime; default .venv/bin/python)
EOF
}

die() { echo "pi_smoke: FAIL: $*" >&2; exit 1; }
usage_error() { echo "pi_smoke: error: $*" >&2; exit 2; }
env_error() { echo "pi_smoke: ENVIRONMENT: this machine cannot run the emulation: $*" >&2; exit 3; }
say() { echo "pi_smoke: $*"; }

while [ $# -gt 0 ]; do
  case "$1" in
    --arch) [ "${2:-}" = all ] && ARCHES+=(arm64 armhf) || ARCHES+=("${2:-}"); shift 2 ;;
    --model) MODEL=${2:?}; shift 2 ;;
    --reference) REFERENCE=${2:?}; shift 2 ;;
    --annotations) ANNOTATIONS=${2:?}; shift 2 ;;
    --images) IMAGES=${2:?}; shift 2 ;;
    --data) DATA_ROOT=${2:?}; shift 2 ;;
    --max-images) MAX_IMAGES=${2:?}; shift 2 ;;
    --runs) RUNS=${2:?}; shift 2 ;;
    --max-steps) MAX_STEPS=${2:?}; shift 2 ;;
    --out) OUT=${2:?}; shift 2 ;;
    --rebuild) REBUILD=1; shift ;;
    -h|--help) usage; exit 0 ;;
    *) usage >&2; usage_error "unknown argument '$1'" ;;
  esac
done
[ ${#ARCHES[@]} -gt 0 ] || ARCHES=(arm64)
for a in "${ARCHES[@]}"; do
  case "$a" in arm64|armhf) ;; *) usage_error "--arch must be arm64, armhf or all, not '$a'" ;; esac
done

# --- inputs: relative paths are taken from the repository root -------------------------------------------------
cd "$ROOT_DIR"
abspath() { case "$1" in /*) echo "$1" ;; *) echo "$ROOT_DIR/$1" ;; esac; }
MODEL=$(abspath "$MODEL")
REFERENCE=$(abspath "${REFERENCE:-${MODEL%.tflite}.reference.npz}")
ANNOTATIONS=$(abspath "${ANNOTATIONS:-$DATA_ROOT/annotations/person_keypoints_val.json}")
IMAGES=$(abspath "${IMAGES:-$DATA_ROOT/images/val}")
OUT=$(abspath "$OUT")
[ -f "$MODEL" ] || usage_error "model not found: $MODEL
  export one first (tfpose pipeline --config configs/quickstart.yaml writes runs/quickstart/student_int8.tflite;
  tfpose export ... --android-assets android_assets writes android_assets/model.tflite), or pass --model"
[ -f "$REFERENCE" ] || usage_error "reference outputs not found: $REFERENCE (tfpose export writes them beside the .tflite; or pass --reference)"
[ -f "$ANNOTATIONS" ] || usage_error "annotations not found: $ANNOTATIONS
  tfpose pipeline --config configs/quickstart.yaml renders the default synthetic dataset; or pass --annotations and --images"
[ -d "$IMAGES" ] || usage_error "image folder not found: $IMAGES (pass --images)"
if [ -z "$HOST_PYTHON" ]; then
  if [ -x "$ROOT_DIR/.venv/bin/python" ]; then HOST_PYTHON=$ROOT_DIR/.venv/bin/python; else HOST_PYTHON=python3; fi
fi
"$HOST_PYTHON" -c "import tflite.runtime as r; r.import_runtime()" 2>/dev/null \
  || usage_error "$HOST_PYTHON cannot import this project with a TFLite runtime: run bash scripts/setup.sh, or set PYTHON"

# --- this machine: root, qemu-user-static with binfmt_misc, debootstrap ----------------------------------------
[ "$(id -u)" = 0 ] || env_error "needs root (debootstrap, chroot, mounts)"
[ "$(uname -m)" = x86_64 ] || say "note: this machine is $(uname -m), not x86_64; the parity reference is its own run"
HOST_ARCH=$(uname -m)
if ! command -v debootstrap >/dev/null || ! command -v qemu-aarch64-static >/dev/null \
   || ! command -v update-binfmts >/dev/null; then
  command -v apt-get >/dev/null || env_error "needs debootstrap, qemu-user-static and binfmt-support (no apt-get here)"
  say "installing qemu-user-static binfmt-support debootstrap with apt-get"
  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq qemu-user-static binfmt-support \
      debootstrap >/dev/null; } || env_error "apt-get could not install qemu-user-static binfmt-support debootstrap"
fi
if [ ! -e /proc/sys/fs/binfmt_misc/status ]; then
  mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc 2>/dev/null \
    || env_error "cannot mount binfmt_misc (an unprivileged container?)"
fi
update-binfmts --enable >/dev/null 2>&1 || true
for a in "${ARCHES[@]}"; do
  handler=$([ "$a" = arm64 ] && echo qemu-aarch64 || echo qemu-arm)
  grep -q '^enabled' "/proc/sys/fs/binfmt_misc/$handler" 2>/dev/null \
    || env_error "binfmt_misc has no enabled $handler handler (is qemu-user-static installed with binfmt-support?)"
done
if [ -z "${TFPOSE_PI_MIRROR:-}" ]; then
  TFPOSE_PI_MIRROR=$(grep -hoE '^(URIs:|deb) +https?://[^ ]+/debian/?( |$)' /etc/apt/sources.list.d/*.sources \
    /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null | grep -oE 'https?://[^ ]+' | head -n 1 || true)
  TFPOSE_PI_MIRROR=${TFPOSE_PI_MIRROR:-http://deb.debian.org/debian}
fi

mkdir -p "$CACHE" "$OUT"
LOG=$OUT/pi_smoke.log
: > "$LOG"
say "log: $LOG; rootfs cache: $CACHE; mirror: $TFPOSE_PI_MIRROR"

# --- working rootfs: mounts are tracked and undone on every exit, before anything is deleted ---------------------
WORKS=()
cleanup() {
  local w m
  for w in "${WORKS[@]}"; do
    for m in $(awk -v p="$w/" 'index($2, p) == 1 {print $2}' /proc/mounts | sort -r); do
      umount -l "$m" 2>/dev/null || true
    done
    if awk -v p="$w/" 'index($2, p) == 1 {found = 1} END {exit !found}' /proc/mounts; then
      echo "pi_smoke: $w still has mounts; not deleting it" >&2
    else
      rm -rf --one-file-system "$w"
    fi
  done
}
trap cleanup EXIT
trap 'exit 130' INT TERM

mount_chroot() {   # $1 rootfs, $2 arch
  local r=$1
  mount -t proc proc "$r/proc"
  mount -t sysfs sysfs "$r/sys"
  mount --rbind /dev "$r/dev"
  mount --make-rslave "$r/dev"
  # qemu-user passes this machine's /proc/cpuinfo through; ai-edge-litert's CPU detection segfaults on an x86 one
  cpuinfo "$2" > "$r/../cpuinfo"
  mount --bind "$r/../cpuinfo" "$r/proc/cpuinfo"
  cp -L /etc/resolv.conf "$r/etc/resolv.conf"
  if compgen -G "/usr/local/share/ca-certificates/*.crt" >/dev/null; then   # a proxy's CA, where there is one
    mkdir -p "$r/usr/local/share/ca-certificates"
    cp /usr/local/share/ca-certificates/*.crt "$r/usr/local/share/ca-certificates/"
    chroot "$r" update-ca-certificates >/dev/null 2>&1 || true
  fi
}

cpuinfo() {   # a Raspberry Pi 4 (Cortex-A72) as its kernel reports it to a 64- or 32-bit userland
  local i
  for i in 0 1 2 3; do
    if [ "$1" = arm64 ]; then
      printf 'processor\t: %s\nBogoMIPS\t: 108.00\nFeatures\t: fp asimd evtstrm crc32 cpuid\n' "$i"
      printf 'CPU implementer\t: 0x41\nCPU architecture: 8\n'
    else
      printf 'processor\t: %s\nmodel name\t: ARMv7 Processor rev 3 (v7l)\nBogoMIPS\t: 108.00\n' "$i"
      printf 'Features\t: half thumb fastmult vfp edsp neon vfpv3 tls vfpv4 idiva idivt vfpd32 lpae evtstrm crc32\n'
      printf 'CPU implementer\t: 0x41\nCPU architecture: 7\n'
    fi
    printf 'CPU variant\t: 0x0\nCPU part\t: 0xd08\nCPU revision\t: 3\n\n'
  done
  printf 'Hardware\t: BCM2835\nRevision\t: c03111\nSerial\t\t: 0000000000000000\n'
  printf 'Model\t\t: Raspberry Pi 4 Model B, emulated by qemu-user\n'
}

# The CPU qemu emulates: a Raspberry Pi's, not qemu's default 'max'. Under 'max' (which has SVE) ai-edge-litert
# 2.3.0's XNNPACK int8 kernels return wrong heatmaps under qemu 7.2 (255 int8 steps off; right with SVE off), and a
# Pi has no SVE. arm64: Cortex-A72 (Pi 4; cortex-a76 is a Pi 5); armhf: Cortex-A15, qemu-arm's closest ARMv7 core.
qemu_cpu() { if [ "$1" = arm64 ]; then echo "${TFPOSE_PI_CPU_ARM64:-cortex-a72}"; else echo "${TFPOSE_PI_CPU_ARMHF:-cortex-a15}"; fi; }
QEMU_CPU_NOW=

in_chroot() {   # $1 rootfs, rest: a bash script run as root in a clean environment
  local r=$1; shift
  chroot "$r" /usr/bin/env -i HOME=/root LANG=C.UTF-8 PATH=/opt/venv/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    ${QEMU_CPU_NOW:+QEMU_CPU=$QEMU_CPU_NOW} \
    PIP_CERT=/etc/ssl/certs/ca-certificates.crt SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt \
    PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_DEFAULT_TIMEOUT=120 PIP_NO_CACHE_DIR=1 \
    ${http_proxy:+http_proxy=$http_proxy} ${https_proxy:+https_proxy=$https_proxy} \
    ${no_proxy:+no_proxy=$no_proxy} /bin/bash -euo pipefail -c "$*"
}

# One step in the emulated userland; a segmentation fault (qemu's or the program's) is retried once, and said so.
SEGFAULTS=0
step() {   # $1 arch, $2 rootfs, $3 name, rest: script
  local arch=$1 r=$2 name=$3 rc attempt steplog
  shift 3
  for attempt in 1 2; do
    steplog=$OUT/$arch/$name.log
    say "[$arch] $name$([ "$attempt" = 2 ] && echo ' (retry)')"
    set +e
    in_chroot "$r" "$@" 2>&1 | tee "$steplog" >> "$LOG"
    rc=${PIPESTATUS[0]}
    set -e
    [ "$rc" = 0 ] && return 0
    if [ "$rc" = 139 ] || grep -qE 'Segmentation fault|signal 11|SIGSEGV' "$steplog"; then
      SEGFAULTS=$((SEGFAULTS + 1))
      echo "pi_smoke: [$arch] $name: SEGMENTATION FAULT under qemu (exit $rc), attempt $attempt of 2" | tee -a "$LOG" >&2
      tail -n 5 "$steplog" >&2
      [ "$attempt" = 1 ] && continue
      env_error "[$arch] $name crashed with a segmentation fault twice under qemu (log: $steplog); an emulation" \
        "problem unless the x86_64 run crashes too"
    fi
    tail -n 30 "$steplog" >&2
    if grep -qE 'ConnectionError|ReadTimeoutError|NewConnectionError|Max retries exceeded|Temporary failure in name' \
         "$steplog"; then
      env_error "[$arch] $name lost the network (log: $steplog)"
    fi
    die "[$arch] $name failed (exit $rc); log: $steplog"
  done
}

# --- the base rootfs: debootstrap once, then a tarball in the cache ----------------------------------------------
BASE_TARBALL=
base_rootfs() {   # $1 arch; sets BASE_TARBALL
  local arch=$1 tarball=$CACHE/$SUITE-$arch-base.tar build m
  exec 9>"$CACHE/.lock-$arch"
  flock 9
  if [ "$REBUILD" = 1 ] || [ ! -s "$tarball" ]; then
    build=$(mktemp -d "$CACHE/build-$arch.XXXXXX")
    WORKS+=("$build")
    say "[$arch] building the base rootfs (debootstrap $SUITE from $TFPOSE_PI_MIRROR; a few minutes)"
    debootstrap --arch="$arch" --variant=minbase --include=python3,python3-venv,python3-pip,ca-certificates \
      "$SUITE" "$build/rootfs" "$TFPOSE_PI_MIRROR" >> "$LOG" 2>&1 \
      || env_error "debootstrap --arch=$arch failed (mirror $TFPOSE_PI_MIRROR unreachable?); see $LOG"
    if [ "$arch" = armhf ]; then
      # PyPI has no armv7 wheels of numpy or OpenCV (a real Pi gets them from piwheels): Debian's instead
      mount_chroot "$build/rootfs" "$arch"
      in_chroot "$build/rootfs" "apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
        --no-install-recommends python3-numpy python3-opencv python3-yaml >/dev/null && apt-get clean" \
        >> "$LOG" 2>&1 || env_error "apt-get install python3-numpy python3-opencv failed in the armhf rootfs; see $LOG"
      for m in $(awk -v p="$build/rootfs/" 'index($2, p) == 1 {print $2}' /proc/mounts | sort -r); do umount -l "$m"; done
    fi
    rm -f "$build/rootfs/etc/resolv.conf"
    tar -C "$build/rootfs" -cf "$tarball.part" . && mv "$tarball.part" "$tarball"
    rm -rf --one-file-system "$build"
  else
    say "[$arch] reusing the base rootfs $tarball"
  fi
  flock -u 9
  BASE_TARBALL=$tarball
}

# --- the inputs every userland gets: the model, its reference crops, a few annotated images, the parity helper ----
DATA=$OUT/data
rm -rf "$DATA"
mkdir -p "$DATA/images"
cp "$MODEL" "$DATA/model.tflite"
cp "$REFERENCE" "$DATA/model.reference.npz"
cp "$ROOT_DIR/scripts/pi_parity.py" "$DATA/"
python3 - "$ANNOTATIONS" "$IMAGES" "$DATA" "$MAX_IMAGES" <<'EOF' || usage_error "could not read $ANNOTATIONS"
import json, shutil, sys
from pathlib import Path
annotations, images, out, limit = json.load(open(sys.argv[1])), Path(sys.argv[2]), Path(sys.argv[3]), int(sys.argv[4])
labelled = {a["image_id"] for a in annotations["annotations"] if a.get("num_keypoints", 1) > 0}
keep = [im for im in annotations["images"] if im["id"] in labelled][: limit or None]
ids = {im["id"] for im in keep}
annotations.update(images=keep, annotations=[a for a in annotations["annotations"] if a["image_id"] in ids])
for im in keep:
    shutil.copy(images / im["file_name"], out / "images" / Path(im["file_name"]).name)
    im["file_name"] = Path(im["file_name"]).name
json.dump(annotations, open(out / "val.json", "w"))
print(f"pi_smoke: {len(keep)} images, {len(annotations['annotations'])} persons from {sys.argv[1]}")
EOF

validate_args() {   # $1 the folder holding the inputs
  echo "--annotations $1/val.json --images $1/images --reference $1/model.reference.npz --threads 1 2 --runs $RUNS \
--warmup 2 --overlays 2"
}
declare -A TIMES

# --- this machine first: the parity reference, and proof that the inputs are good --------------------------------
t0=$SECONDS
mkdir -p "$OUT/$HOST_ARCH"
say "[$HOST_ARCH] validator and reference outputs on this machine ($HOST_PYTHON)"
( cd "$OUT/$HOST_ARCH" && PYTHONPATH=$ROOT_DIR "$HOST_PYTHON" -m tflite.validate "$DATA/model.tflite" \
    $(validate_args "$DATA") --out "$OUT/$HOST_ARCH" > "$OUT/$HOST_ARCH/validate.log" 2>&1 \
  && PYTHONPATH=$ROOT_DIR "$HOST_PYTHON" "$DATA/pi_parity.py" dump "$DATA/model.tflite" "$DATA/model.reference.npz" \
    "$OUT/$HOST_ARCH/outputs.npz" >> "$OUT/$HOST_ARCH/validate.log" 2>&1 \
  && PYTHONPATH=$ROOT_DIR "$HOST_PYTHON" "$DATA/pi_parity.py" dump "$DATA/model.tflite" "$DATA/model.reference.npz" \
    "$OUT/$HOST_ARCH/outputs_builtin.npz" --no-xnnpack >> "$OUT/$HOST_ARCH/validate.log" 2>&1 ) \
  || { tail -n 30 "$OUT/$HOST_ARCH/validate.log" >&2; die "the validator failed on this machine: the model or data are bad"; }
TIMES[$HOST_ARCH]="{\"validate\": $((SECONDS - t0))}"

# --- each emulated userland --------------------------------------------------------------------------------------
for arch in "${ARCHES[@]}"; do
  mkdir -p "$OUT/$arch"
  t0=$SECONDS
  base_rootfs "$arch"
  t_base=$((SECONDS - t0))
  work=$(mktemp -d "${TMPDIR:-/var/tmp}/tfpose-pi-$arch.XXXXXX")
  WORKS+=("$work")
  r=$work/rootfs
  mkdir "$r"
  tar -C "$r" -xf "$BASE_TARBALL"
  mount_chroot "$r" "$arch"
  QEMU_CPU_NOW=$(qemu_cpu "$arch")
  say "[$arch] emulated CPU: $QEMU_CPU_NOW"
  mkdir -p "$r/opt/tfpose" "$r/data"
  # the checkout as pip sees it from git: no virtualenv, runs, build outputs or exported models
  tar -C "$ROOT_DIR" --exclude=./.git --exclude=./.venv --exclude=./runs --exclude=./build --exclude=./dist \
    --exclude='*.egg-info' --exclude=__pycache__ --exclude=.pytest_cache --exclude=./android_assets \
    --exclude='*.tflite' -cf - . | tar -C "$r/opt/tfpose" -xf -
  cp -r "$DATA/." "$r/data/"
  t_setup=$((SECONDS - t0))

  in_chroot "$r" "python3 -c \"import urllib.request; urllib.request.urlopen('https://pypi.org/simple/pip/', timeout=60)\"" \
    >> "$LOG" 2>&1 || env_error "PyPI is unreachable from the $arch rootfs; see $LOG"

  t1=$SECONDS
  if [ "$arch" = armhf ]; then
    # Debian's numpy 1.24 and OpenCV 4.6 stand in for piwheels' wheels; OpenCV is announced to pip under the name
    # the project requires, so that the README's pip line resolves as it does on a Pi
    step "$arch" "$r" venv "python3 -m venv --system-site-packages /opt/venv
      site=\$(/opt/venv/bin/python -c 'import sysconfig; print(sysconfig.get_paths()[\"purelib\"])')
      v=\$(/usr/bin/python3 -c 'import cv2; print(cv2.__version__)')
      d=\$site/opencv_python_headless-\$v.dist-info
      mkdir -p \$d
      printf 'Metadata-Version: 2.1\nName: opencv-python-headless\nVersion: %s\n' \$v > \$d/METADATA
      printf 'debian-python3-opencv\n' > \$d/INSTALLER
      : > \$d/RECORD"
  else
    step "$arch" "$r" venv "python3 -m venv /opt/venv"
  fi
  # the README's lines for Pi users, with this checkout in place of the git URL. 32-bit Raspberry Pi OS has its own
  # extra: on a Pi 4 or 5 it boots a 64-bit kernel, so platform_machine says aarch64 and no marker could tell
  if [ "$arch" = arm64 ]; then
    pip_line="pip install 'tfpose[device] @ file:///opt/tfpose'"
  else
    pip_line="pip install 'tfpose[device32] @ file:///opt/tfpose'"
  fi
  step "$arch" "$r" pip-install "cd /tmp && $pip_line && pip list"
  t_install=$((SECONDS - t1))
  expected=$([ "$arch" = arm64 ] && echo ai_edge_litert || echo tflite_runtime)
  step "$arch" "$r" imports "cd /tmp && python - <<'PY'
import platform, sys
import cv2, numpy
import tflite.validate
from tflite.runtime import import_runtime
name, version, _ = import_runtime()
heavy = sorted(m for m in sys.modules if m.split('.')[0] in ('tensorflow', 'tf_keras', 'keras', 'matplotlib'))
print(f'{platform.machine()} Python {platform.python_version()} numpy {numpy.__version__} OpenCV {cv2.__version__} '
      f'{name} {version}')
assert not heavy, f'the validator imported {heavy}'
assert name == '$expected', f'the [device] extra gave {name}, expected $expected on {platform.machine()}'
PY"
  sed -n '$p' "$OUT/$arch/imports.log"
  t2=$SECONDS
  step "$arch" "$r" validate "cd /data && tfpose-validate /data/model.tflite $(validate_args /data) --out /data/report"
  step "$arch" "$r" dump "cd /data && python /data/pi_parity.py dump /data/model.tflite /data/model.reference.npz /data/outputs.npz"
  t_validate=$((SECONDS - t2))
  cp -r "$r/data/report/." "$OUT/$arch/"
  cp "$r/data/outputs.npz" "$OUT/$arch/"
  TIMES[$arch]="{\"base_rootfs\": $t_base, \"setup\": $t_setup, \"install\": $t_install, \"validate\": $t_validate, \
\"total\": $((SECONDS - t0))}"
  say "[$arch] done in $((SECONDS - t0)) s (base rootfs $t_base s, install $t_install s, validator $t_validate s)"
  cleanup
  WORKS=()
  QEMU_CPU_NOW=
done

timings="{"
for k in "${!TIMES[@]}"; do timings+="\"$k\": ${TIMES[$k]},"; done
timings="${timings%,}}"
[ "$SEGFAULTS" = 0 ] || say "qemu segmentation faults: $SEGFAULTS (each retried once and then passed)"
say "summary ($OUT/summary.md):"
PYTHONPATH=$ROOT_DIR "$HOST_PYTHON" "$ROOT_DIR/scripts/pi_parity.py" summarize --out "$OUT" --host "$HOST_ARCH" \
  --arch "${ARCHES[@]}" --max-steps "$MAX_STEPS" --timings "$timings" \
  || die "outputs differ from this machine's run with the same kernels by more than $MAX_STEPS int8 step(s); see $OUT/summary.md"
say "PASS (emulated timings are not device timings)"
