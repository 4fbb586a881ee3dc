#!/usr/bin/env bash
# Execute one chapter in place from its MyST source: .md -> fresh .ipynb -> papermill -> tidy.
# Usage: tools/execute_chapter.sh chapters/NN_topic.md
set -euo pipefail
md=$1
nb=${md%.md}.ipynb
bin=$(dirname "$0")/../.venv/bin
start=$(date +%s)
"$bin/jupytext" --quiet --to ipynb --output "$nb" "$md"
"$bin/papermill" --no-progress-bar --log-level WARNING --cwd "$(dirname "$md")" "$nb" "$nb"
"$bin/python" "$(dirname "$0")/clean_notebook.py" "$nb"
echo "executed $nb in $(( $(date +%s) - start )) s"
