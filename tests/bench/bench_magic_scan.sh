#!/usr/bin/env bash
# Benchmark: how long magic_disk takes to probe N candidate disks (default 32 loop devices of 320 MiB).
# Prints figures; asserts nothing about time. Run as root from the repo root:
#   bash tests/bench/bench_magic_scan.sh [N] [ROUNDS]
# Measures, each over ROUNDS runs (median and min), with N sparse 320 MiB loop disks listed in devices:
#   1. state=partitioned --check, no magic disk among them (the everyday boot: probe only)
#   2. the same through the module's Python directly (no Ansible), to separate probe cost from Ansible overhead
#   3. an empty run (ansible.builtin.ping) for the fixed cost of one module execution
#   4. state=partitioned, all N disks magic (first boot: lay out every disk)
set -euo pipefail

# shellcheck source-path=SCRIPTDIR source=../../scripts/lib/env.sh
. "$(dirname -- "${BASH_SOURCE[0]}")/../../scripts/lib/env.sh"
N=${1:-32}
ROUNDS=${2:-5}
[ "$(id -u)" -eq 0 ] || { echo "bench: run as root" >&2; exit 1; }
bash "$LW_ROOT/scripts/setup" >/dev/null 2>&1

WORK=$(mktemp -d /tmp/lwbench-XXXXXX)
LOOPS=()
cleanup() {
    local loop
    for loop in "${LOOPS[@]}"; do
        partx -d "$loop" 2>/dev/null || true
        losetup -d "$loop" 2>/dev/null || true
    done
    rm -rf -- "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

export ANSIBLE_COLLECTIONS_PATH="$WORK/collections" ANSIBLE_HOME="$WORK/ansible" \
    ANSIBLE_LOCAL_TEMP="$WORK/ansible/tmp" ANSIBLE_PYTHON_INTERPRETER="$LW_VENV_OLD/bin/python" \
    ANSIBLE_DEPRECATION_WARNINGS=false
"$LW_VENV_OLD/bin/ansible-galaxy" collection build --force --output-path "$WORK" "$LW_ROOT" >/dev/null
"$LW_VENV_OLD/bin/ansible-galaxy" collection install --force -p "$WORK/collections" \
    "$WORK"/lightwhale-persistence-*.tar.gz >/dev/null 2>&1

for i in $(seq 1 "$N"); do
    truncate -s 320M "$WORK/d$i.img"
    LOOPS+=("$(losetup --find --show "$WORK/d$i.img")")
done
DEVICES=$(printf '"%s",' "${LOOPS[@]}")
DEVICES="[${DEVICES%,}]"

# stats LABEL CMD...: run CMD ROUNDS times, print median and min wall seconds.
stats() {
    local label=$1 times=() start end
    shift
    for _ in $(seq 1 "$ROUNDS"); do
        start=$(date +%s.%N)
        "$@" >/dev/null 2>&1 || { echo "bench: '$label' failed" >&2; "$@" | tail -20 >&2; exit 1; }
        end=$(date +%s.%N)
        times+=("$(awk -v a="$start" -v b="$end" 'BEGIN { printf "%.3f", b - a }')")
    done
    printf '%s\n' "${times[@]}" | sort -g | awk -v label="$label" -v n="$ROUNDS" '
        { t[NR] = $1 } END { printf "%-58s median %6.3f s   min %6.3f s   (%d runs)\n", label, t[int((n + 1) / 2)], t[1], n }'
}

adhoc() {
    "$LW_VENV_OLD/bin/ansible" localhost -c local -i localhost, -m "$1" -a "$2" "${@:3}"
}

direct_probe() {
    # The probe the module makes, without Ansible: one Python process importing the core.
    PYTHONPATH="$WORK/collections" "$LW_VENV_OLD/bin/python" - "$@" <<'PY'
import sys
from unittest import mock
from ansible_collections.lightwhale.persistence.plugins.module_utils import _candidates, _mountinfo
from ansible_collections.lightwhale.persistence.plugins.module_utils._command import Runner
import subprocess
class Module:
    def get_bin_path(self, tool, required=False):
        return subprocess.check_output(['sh', '-c', 'command -v ' + tool]).decode().strip()
    def run_command(self, cmd, data=None, environ_update=None):
        proc = subprocess.run(cmd, input=data, stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True)
        return proc.returncode, proc.stdout, proc.stderr
disks = _candidates.listed(Runner(Module()), sys.argv[1:], _mountinfo.read_mounts(), _mountinfo.read_swaps())
assert len(disks) == len(sys.argv) - 1
PY
}

echo "magic_disk probe benchmark: $N loop disks of 320 MiB, $ROUNDS rounds, $(nproc) cores, ansible-core $("$LW_VENV_OLD/bin/python" -c 'import ansible; print(ansible.__version__)')"
stats "ansible.builtin.ping (fixed cost of one module run)" adhoc ansible.builtin.ping ''
stats "magic_disk partitioned --check, $N plain disks" adhoc lightwhale.persistence.magic_disk \
    "{\"devices\": $DEVICES, \"state\": \"partitioned\"}" --check
stats "core probe of $N disks in Python, no Ansible" direct_probe "${LOOPS[@]}"
stats "magic_disk partitioned --check, 1 plain disk" adhoc lightwhale.persistence.magic_disk \
    "{\"devices\": [\"${LOOPS[0]}\"], \"state\": \"partitioned\"}" --check

# First boot: every disk magic, laid out in one run (once; a second round would find nothing to do).
for loop in "${LOOPS[@]}"; do printf 'lightwhale-please-format-me\n' | dd conv=notrunc of="$loop" status=none; done
ROUNDS=1 stats "magic_disk partitioned, $N magic disks (first boot)" adhoc lightwhale.persistence.magic_disk \
    "{\"devices\": $DEVICES, \"state\": \"partitioned\", \"swap_size\": \"16M\"}"
stats "magic_disk partitioned, $N laid-out disks (next boots)" adhoc lightwhale.persistence.magic_disk \
    "{\"devices\": $DEVICES, \"state\": \"partitioned\"}"
