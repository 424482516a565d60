# shellcheck shell=bash
# Sourced by the scripts in scripts/: where the repo, the cache and the two test venvs are.
#
#   LW_ROOT        the repo root (= the collection root)
#   LW_CACHE       cache dir outside the repo (env LW_CACHE, default /var/cache/lightwhale-persistence)
#   LW_PY_OLD      Python 3.11 interpreter (controller for the oldest core, 2.19)
#   LW_PY_NEW      Python 3.13 interpreter (controller for the newest core, 2.21)
#   LW_VENV_OLD    venv with ansible-core 2.19 + lint/doc/changelog/molecule tools
#   LW_VENV_NEW    venv with ansible-core 2.21
#   LW_VENV_DOCS   venv with galaxy-importer, antsibull-docs and Sphinx (Python 3.11; scripts/docs-site, lint)
#
# The venv paths carry a hash of their requirements file and of the interpreter's version,
# so a changed requirements file gives a new venv and an unchanged one is reused.
# scripts/setup builds them; sourcing this file only computes the paths.

LW_ROOT=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")/../.." && pwd)
LW_CACHE=${LW_CACHE:-/var/cache/lightwhale-persistence}
LW_REQ_OLD=$LW_ROOT/requirements/core-2.19.txt
LW_REQ_NEW=$LW_ROOT/requirements/core-2.21.txt
LW_REQ_DOCS=$LW_ROOT/requirements/docs.txt

# lw_find_python X.Y -> prints the path of a pythonX.Y interpreter that can make venvs.
# Prefers pyenv's newest X.Y.*, then any pythonX.Y on PATH.
lw_find_python() {
    local want=$1 root ver cand
    for root in ${PYENV_ROOT:+"$PYENV_ROOT"} /root/.pyenv; do
        [ -d "$root/versions" ] || continue
        if [ -x "$root/bin/pyenv" ]; then
            ver=$(PYENV_ROOT=$root "$root/bin/pyenv" latest "$want" 2>/dev/null) || ver=
            cand=$root/versions/$ver/bin/python$want
            if [ -n "$ver" ] && [ -x "$cand" ]; then
                printf '%s\n' "$cand"
                return 0
            fi
        fi
        cand=$(printf '%s\n' "$root"/versions/"$want".*/bin/python"$want" | sort -V | tail -n 1)
        if [ -x "$cand" ]; then
            printf '%s\n' "$cand"
            return 0
        fi
    done
    cand=$(command -v "python$want" 2>/dev/null) || cand=
    if [ -n "$cand" ] && "$cand" -c 'import venv, ensurepip' 2>/dev/null; then
        printf '%s\n' "$cand"
        return 0
    fi
    echo "lw: no usable python$want found (pyenv versions or PATH)" >&2
    return 1
}

# lw_venv_path NAME REQFILE PYTHON -> prints $LW_CACHE/venv-NAME-<hash>
lw_venv_path() {
    local name=$1 req=$2 py=$3 hash
    hash=$({ cat -- "$req"; "$py" -c 'import sys; print(sys.version)'; } | sha256sum | cut -c1-12)
    printf '%s/venv-%s-%s\n' "$LW_CACHE" "$name" "$hash"
}

LW_PY_OLD=$(lw_find_python 3.11)
LW_PY_NEW=$(lw_find_python 3.13)
LW_VENV_OLD=$(lw_venv_path 2.19 "$LW_REQ_OLD" "$LW_PY_OLD")
LW_VENV_NEW=$(lw_venv_path 2.21 "$LW_REQ_NEW" "$LW_PY_NEW")
LW_VENV_DOCS=$(lw_venv_path docs "$LW_REQ_DOCS" "$LW_PY_OLD")
export LW_ROOT LW_CACHE LW_PY_OLD LW_PY_NEW LW_VENV_OLD LW_VENV_NEW LW_VENV_DOCS

# lw_copy_collection PARENT -> copies the collection's files (tracked, plus untracked files that
# are not git-ignored; deleted ones skipped) to PARENT/ansible_collections/lightwhale/persistence
# and prints that path. ansible-test and ansible-lint need the collection at such a path.
lw_copy_collection() {
    local coll=$1/ansible_collections/lightwhale/persistence
    mkdir -p -- "$coll"
    (
        cd -- "$LW_ROOT" || exit 1
        git ls-files -z -co --exclude-standard | while IFS= read -r -d '' f; do
            if [ -e "$f" ] || [ -L "$f" ]; then printf '%s\0' "$f"; fi
        done | tar --null -T - -cf - | tar -xf - -C "$coll"
    )
    printf '%s\n' "$coll"
}
