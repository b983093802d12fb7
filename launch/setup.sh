#!/usr/bin/env bash
# setup.sh: install what kdtrain needs on Debian 12 (run as root, or with sudo available).
# CUDA is optional and never installed here: the build uses it when nvcc exists.
set -euo pipefail
pkgs=(build-essential cmake pkg-config openmpi-bin libopenmpi-dev libhdf5-openmpi-dev hdf5-tools
      libyaml-dev libopenblas-dev python3-pip python3-h5py python3-numpy python3-torch valgrind clang
      libclang-rt-14-dev libomp-14-dev  # clang's libFuzzer runtime and OpenMP: fuzz tests
      slurm-wlm munge                   # a private SLURM for the slurm tests
      chromium)                         # headless rendering of `kdtrain report` (tests)
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

# Python clients the reference tests talk to (Hugging Face transformers/tokenizers,
# safetensors, TensorBoard's reader), in .pydeps/ beside the sources, for Debian's
# python3 (torch 1.13, numpy 1.24). pip brings numpy 2, which breaks torch 1.13: it is
# removed so Debian's numpy is the one imported. Tests run PYTHONPATH=.pydeps /usr/bin/python3.
root=$(cd "$(dirname "$0")/.." && pwd)
pydeps="$root/.pydeps"
pyreq=(transformers==4.44.2 tokenizers==0.19.1 safetensors==0.4.5 tensorboard==2.18.0)
stamp="$pydeps/.installed"
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "${pyreq[*]}" ]; then
  echo "setup: installing ${pyreq[*]} into $pydeps"
  rm -rf "$pydeps"
  PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_ROOT_USER_ACTION=ignore \
    /usr/bin/python3 -m pip install -q --target "$pydeps" "${pyreq[@]}"
  rm -rf "$pydeps"/numpy "$pydeps"/numpy-* "$pydeps"/numpy.libs "$pydeps"/bin
  echo "${pyreq[*]}" >"$stamp"
fi
PYTHONPATH="$pydeps" /usr/bin/python3 -c "import torch, transformers, tokenizers, safetensors, tensorboard" \
  || { echo "setup: the Python clients in $pydeps do not import (see above)"; exit 1; }
echo "setup: python clients present ($pydeps)"
