#!/usr/bin/env bash
# Provision the Python side on a fresh machine: PDM (in .tools/ when not installed) and the
# project environment (.venv) from pdm.lock. Kafka and PostgreSQL are provisioned by devstack.
set -euo pipefail
cd "$(dirname "$0")/.."

PDM_VERSION="2.29.3"
export PDM_CHECK_UPDATE=false

find_python() {
  for candidate in python3.11 python3; do
    if command -v "$candidate" >/dev/null 2>&1 &&
      "$candidate" -c 'import sys; sys.exit(0 if sys.version_info[:2] == (3, 11) else 1)'; then
      command -v "$candidate"
      return 0
    fi
  done
  return 1
}

if command -v pdm >/dev/null 2>&1; then
  PDM=$(command -v pdm)
elif [ -x .tools/pdm/bin/pdm ]; then
  PDM=.tools/pdm/bin/pdm
else
  PYTHON=$(find_python) || {
    echo "bootstrap: Python 3.11 is required (python3.11 or python3 must be 3.11)." >&2
    exit 1
  }
  echo "bootstrap: installing PDM ${PDM_VERSION} into .tools/pdm" >&2
  "$PYTHON" -m venv .tools/pdm
  # The 'locked' extra pins PDM's own dependencies to versions it was released with.
  .tools/pdm/bin/pip install --quiet --disable-pip-version-check "pdm[locked]==${PDM_VERSION}"
  PDM=.tools/pdm/bin/pdm
fi

if [ ! -x .venv/bin/python ] || [ pdm.lock -nt .venv/.synced ] || [ pyproject.toml -nt .venv/.synced ]; then
  PYTHON=$(find_python) || { echo "bootstrap: Python 3.11 is required." >&2; exit 1; }
  [ -x .venv/bin/python ] || "$PDM" venv create --with-pip "$PYTHON" >&2
  "$PDM" use -f .venv/bin/python >/dev/null
  "$PDM" install -G dev --frozen-lockfile >&2
  touch .venv/.synced
fi
