#!/usr/bin/env bash
# Installs everything isoflop needs on a fresh Debian machine, idempotently.
#   scripts/setup.sh            system packages + Python venv with torch (for training)
# Environment knobs:
#   ISOFLOP_SKIP_APT=1          do not touch Debian packages
#   ISOFLOP_SKIP_TORCH=1        do not create the torch venv (fitting and plotting need none)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
venv="$root/.venv"
TORCH_VERSION=2.11.0   # pairs with tch 0.24 (see DEVELOPERS.md)

log() { echo "setup: $*" >&2; }

if [ "${ISOFLOP_SKIP_APT:-0}" != 1 ] && command -v apt-get >/dev/null 2>&1; then
  want=()
  [ -f /usr/lib/bible.data ] || want+=(bible-kjv bible-kjv-text)   # the default training corpus
  [ -x /usr/bin/chromium ] || want+=(chromium)                       # the report's browser test
  if [ "${#want[@]}" -gt 0 ]; then
    log "installing Debian packages: ${want[*]}"
    export DEBIAN_FRONTEND=noninteractive
    sudo_=""; [ "$(id -u)" = 0 ] || sudo_="sudo"
    $sudo_ apt-get update -qq
    $sudo_ apt-get install -y -qq --no-install-recommends "${want[@]}" >/dev/null
  fi
fi

if [ "${ISOFLOP_SKIP_TORCH:-0}" != 1 ]; then
  if ! "$venv/bin/python" -c "import torch, sys; sys.exit(torch.__version__.split('+')[0] != '$TORCH_VERSION')" 2>/dev/null; then
    log "creating $venv with torch==$TORCH_VERSION (about 5 GB, a few minutes)"
    python3 -m venv "$venv"
    "$venv/bin/pip" install -q --disable-pip-version-check "torch==$TORCH_VERSION"
  fi
fi
log "done"
