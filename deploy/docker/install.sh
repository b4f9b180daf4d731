#!/bin/sh
# Used by the Dockerfile's build stages, in /src:
#   install.sh deps EXTRAS   the requirements of EXTRAS (deploy/docker/requirements.py), into /opt/venv
#   install.sh project       the project itself, without dependencies, then `pip check`
# Reads MODELS, EXTRA_PACKAGES, TORCH_SPEC and TORCH_INDEX_URL from the build arguments.
set -eu

case "$1" in
deps)
    extras="$2"
    case ",$extras," in
    # sentence-transformers would otherwise pull torch's multi-GB CUDA build from PyPI.
    *,minilm,*) pip install --index-url "$TORCH_INDEX_URL" "$TORCH_SPEC" ;;
    esac
    python deploy/docker/requirements.py "$extras" --models "${MODELS:-none}" >/tmp/requirements.txt
    # shellcheck disable=SC2086 # EXTRA_PACKAGES is a space-separated list on purpose
    pip install -r /tmp/requirements.txt ${EXTRA_PACKAGES:-}
    ;;
project)
    pip install --no-deps .
    pip check
    ;;
*)
    echo "usage: install.sh deps EXTRAS | project" >&2
    exit 2
    ;;
esac
