#!/usr/bin/env bash
# Installs every Debian package deepercluster needs to build, test and run.
# Idempotent: packages already present are skipped; safe to run again.
# Works as root on a fresh Debian 12 machine (or with sudo). Nothing is
# downloaded from anywhere but Debian's archive.
set -euo pipefail

pkgs=(
  build-essential pkg-config make
  libopenblas-openmp-dev liblapacke-dev
  libjpeg62-turbo-dev libpng-dev zlib1g-dev
  libopenmpi-dev openmpi-bin
  libdnnl-dev
  libcjson-dev
  dataset-fashion-mnist
  chromium  # tests/test_report.sh renders the run report in headless Chromium
  # the Python package's tests (tests/test_python.sh): NumPy, pytest, pip for
  # `pip install ./python`, PyTorch for the interop check
  python3-numpy python3-pytest python3-pip python3-setuptools python3-torch
)

missing=()
for p in "${pkgs[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
    missing+=("$p")
  fi
done

if [ "${#missing[@]}" -eq 0 ]; then
  echo "setup: all ${#pkgs[@]} packages present"
  exit 0
fi

sudo=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || { echo "setup: need root or sudo to install: ${missing[*]}" >&2; exit 1; }
  sudo=sudo
fi
echo "setup: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
echo "setup: done"
