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

# Byte-compile our own sources: with PYTHONDONTWRITEBYTECODE set (as on some CI
# machines) Python would otherwise recompile every module on each `aios` start.
# Incremental: only changed files are compiled again.
.venv/bin/python -m compileall -q -j 0 reconciler specs controllers registry >/dev/null
