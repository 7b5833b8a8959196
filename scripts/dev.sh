#!/usr/bin/env bash
# Set up everything Studio needs (once), then open it or run the tests.
#
#   bash scripts/dev.sh studio   # set up and open the studio
#   bash scripts/dev.sh test     # set up and run the whole test suite
#
# Setup: Debian/Ubuntu packages for Qt (when apt-get is there and we may use it), a virtual
# environment in .venv, torch 2.13.0 first (so pip never pulls a multi-GB CUDA build for the
# project's torch range), then the project with its test extra.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
VENV="${STUDIO_VENV:-$ROOT/.venv}"
PYTHON="${PYTHON:-python3}"
TORCH_SPEC="${STUDIO_TORCH_SPEC:-torch==2.13.0}"

APT_PACKAGES=(
  # Qt offscreen and in a window: GL, fonts, xkb, dbus, and the xcb libraries Qt's platform plugin loads.
  libegl1 libgl1 libxkbcommon0 libfontconfig1 libglib2.0-0 libdbus-1-3 fonts-dejavu-core fonts-noto-cjk
  xvfb xauth libxkbcommon-x11-0 libxcb-cursor0 libxcb-icccm4 libxcb-image0 libxcb-keysyms1 libxcb-randr0
  libxcb-render-util0 libxcb-render0 libxcb-shape0 libxcb-shm0 libxcb-sync1 libxcb-util1 libxcb-xfixes0 libxcb-xkb1
)

system_packages() {
  command -v dpkg-query >/dev/null 2>&1 || return 0
  local missing=()
  for p in "${APT_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  local sudo=""
  if [ "$(id -u)" != 0 ]; then
    if command -v sudo >/dev/null 2>&1; then sudo="sudo"; else
      echo "studio setup: please install: ${missing[*]}" >&2; return 0
    fi
  fi
  echo "studio setup: installing system packages: ${missing[*]}"
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

python_packages() {
  local stamp="$VENV/.studio-setup"
  local want
  want="$(cat pyproject.toml "$0" | sha256sum | cut -c1-16)"
  if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then return 0; fi
  [ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"
  "$VENV/bin/python" -m pip install -q --upgrade pip
  "$VENV/bin/python" -m pip install -q "$TORCH_SPEC"
  "$VENV/bin/python" -m pip install -q -e ".[test]"
  echo "$want" > "$stamp"
}

command="${1:-studio}"
shift || true
system_packages
python_packages
case "$command" in
  studio) exec "$VENV/bin/studio" "$@" ;;
  test) exec "$VENV/bin/python" -m pytest -q "$@" ;;
  *) echo "usage: bash scripts/dev.sh [studio|test] [args...]" >&2; exit 2 ;;
esac
