#!/usr/bin/env bash
# One-time set-up of a fresh Debian machine: Jupyter, Chromium, the npm packages and the tslab kernel.
# Safe to re-run: each step is skipped when it is already done.
set -euo pipefail
cd "$(dirname "$0")/.."

# Jupyter (to run the notebooks) and Chromium (to check that the rendered notebooks really display).
# Debian's packages; pip's jupyterlab works as well (see environment.md).
apt_packages=(jupyter-notebook jupyter-nbconvert python3-nbclient python3-ipykernel chromium)
missing=()
for p in "${apt_packages[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" -eq 0 ]; then
    echo "setup: installing Debian packages: ${missing[*]}"
    apt-get update -q
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
  else
    echo "setup: please install as root: apt-get install ${missing[*]}" >&2
    exit 1
  fi
fi

# npm packages, exactly as locked. tfjs-node-gpu is optional: its install fails without internet access
# to download libtensorflow, and the project then runs on the wasm backend.
if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --no-audit --no-fund
fi
npm run --silent build

# Register the TypeScript kernel with Debian's Jupyter. The kernel runs `tslab`, so it must be on PATH:
# the notebook scripts put node_modules/.bin there.
if ! /usr/bin/python3 -m jupyter_client.kernelspecapp list 2>/dev/null | grep -q '^ *tslab '; then
  if [ "$(id -u)" -eq 0 ]; then scope=(); else scope=(--user); fi
  node_modules/.bin/tslab install --python=/usr/bin/python3 "${scope[@]}"
fi
echo "setup: done"
