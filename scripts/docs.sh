#!/usr/bin/env bash
# Build the course as a static site into _docs/ (nbdev's doc_path) from the notebooks of nbs/, executing nothing:
# each page shows what its notebook holds, with the docs of every exported function and class.
#   bash scripts/docs.sh                        # build _docs/; open _docs/index.html, or serve it:
#   bash scripts/docs.sh --serve [--port 8000]  # build, then serve it on http://127.0.0.1:8000 (Ctrl-C stops)
#   bash scripts/docs.sh --out /tmp/site        # build elsewhere
# The renderer is MkDocs with mkdocs-jupyter and Material, not nbdev_docs: nbdev_docs needs Quarto, which no package
# registry installs; these install with pip (the `docs` extra) and build in under a minute. scripts/docs.py says more.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh >&2
exec .venv/bin/python scripts/docs.py "$@"
