#!/usr/bin/env bash
# Set up the environment, check that the library is in step with the notebooks, then run the
# notebook tests (nbdev_test) and the end-to-end tests (pytest).
set -euo pipefail
cd "$(dirname "$0")/.."
# --quick: the edit-run loop (at most 3 minutes once .venv exists): the checks below, nbdev_test, and the pytest tests
# that train nothing and start no server, cluster or site (tests/conftest.py, the marks `trains` and `heavy`).
quick=()
if [ "${1:-}" = "--quick" ]; then quick=(-m "not trains and not heavy"); shift; fi
bash scripts/setup.sh
export MPLBACKEND=Agg
PY=.venv/bin

echo "[test] nbdev_export must not change the library"
before=$(find yolo_mlops -name '*.py' -exec sha256sum {} + | sort)
$PY/nbdev_export
after=$(find yolo_mlops -name '*.py' -exec sha256sum {} + | sort)
if [ "$before" != "$after" ]; then
  echo "[test] FAILED: nbdev_export changed yolo_mlops/ -- the notebooks and the library are out of step." >&2
  echo "       Run nbdev_export and commit nbs/ and yolo_mlops/ together." >&2
  diff <(echo "$before") <(echo "$after") >&2 || true
  exit 1
fi

echo "[test] the committed notebooks must be clean (nbdev_clean must not change them)"
before=$(sha256sum nbs/*.ipynb)
$PY/nbdev_clean
after=$(sha256sum nbs/*.ipynb)
if [ "$before" != "$after" ]; then
  echo "[test] FAILED: these notebooks carry execution counts or metadata that nbdev_clean removes:" >&2
  diff <(echo "$before") <(echo "$after") | grep '^<' | awk '{print "       " $3}' >&2 || true
  echo "       Run nbdev_clean (outputs of cells tagged keep-output stay: scripts/refresh_outputs.py) and commit." >&2
  exit 1
fi

echo "[test] notebooks (nbdev_test)"
$PY/nbdev_test --n_workers 2

# Two pytest-xdist workers, each module whole on one worker (tests/conftest.py says why); YOLO_MLOPS_TEST_WORKERS=0
# runs them in this process, one after the other.
workers="${YOLO_MLOPS_TEST_WORKERS:-2}"
echo "[test] end-to-end tests (pytest, $workers workers${quick:+, quick tier: the tests that train nothing})"
$PY/python -m pytest tests -q -n "$workers" --dist loadgroup --no-loadscope-reorder --durations=15 "${quick[@]}" "$@"
