#!/usr/bin/env bash
# setup.sh: install what kdtrain needs on Debian 12 (run as root, or with sudo available).
# CUDA is optional and never installed here: the build uses it when nvcc exists.
set -euo pipefail
pkgs=(build-essential cmake pkg-config openmpi-bin libopenmpi-dev libhdf5-openmpi-dev hdf5-tools
      libyaml-dev libopenblas-dev python3-h5py python3-numpy python3-torch valgrind clang
      libclang-rt-14-dev libomp-14-dev  # clang's libFuzzer runtime and OpenMP: fuzz tests
      slurm-wlm munge)                  # a private SLURM for the slurm tests
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  echo "setup: installing ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
echo "setup: dependencies present"
