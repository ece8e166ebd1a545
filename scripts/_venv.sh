# Sourced by scripts/app and scripts/test: creates .venv and installs the project's requirements into it.
# Usage: . scripts/_venv.sh [dev]
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${DPO_STUDIO_VENV:-$ROOT/.venv}"
PY="${PYTHON:-python3}"
if [ ! -x "$VENV/bin/python" ]; then
  echo "[setup] creating $VENV"
  "$PY" -m venv "$VENV"
  "$VENV/bin/pip" install -q -U pip
fi
reqs=(-r "$ROOT/requirements.txt")
[ "${1:-}" = "dev" ] && reqs+=(-r "$ROOT/requirements-dev.txt")
stamp="$VENV/.dpo-studio-reqs"
want="$(cat "$ROOT/requirements.txt" "$ROOT/requirements-dev.txt" 2>/dev/null | sha256sum | cut -c1-16)-${1:-run}"
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  echo "[setup] installing requirements into $VENV"
  "$VENV/bin/pip" install -q "${reqs[@]}"
  echo "$want" > "$stamp"
fi
export PATH="$VENV/bin:$PATH"
# heliport's language models as compact memory-mapped arrays (once; downloads heliport's sdist from PyPI)
(cd "$ROOT" && "$VENV/bin/python" -c "import sys; from pipeline.langcheck.heli_model import main; sys.exit(main([]))")
