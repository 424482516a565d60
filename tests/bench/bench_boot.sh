#!/usr/bin/env bash
# Benchmark: the everyday boot - the data filesystem exists - as a real next boot: a fresh private mount namespace
# with nothing mounted, a fresh tmpfs on <root>/run, swap off, the kernel knowing no partitions of the disks; then
# `ansible-playbook lightwhale.persistence.boot` with the boot hook's environment (lightwhale-persistence-boot env).
# Against it, a one-task local playbook (ansible.builtin.ping) run the same way on the same machine, and the ratio.
# Prints figures; asserts nothing about time. Run as root from the repo root:
#   bash tests/bench/bench_boot.sh [ROUNDS]        (default 7 rounds; median and min of each)
# Measured (wall time, each in a namespace of its own):
#   1. ping        a one-task playbook: ansible.builtin.ping
#   2. everyday    the boot playbook on 2 loop disks (RAID1) holding the data filesystem
#   3. wrapper     the same boot through the boot hook's wrapper (logging, summary line included)
#   4. second run  the boot playbook again in the same namespace (nothing to do: an operator's re-run)
#   5. shell       the same everyday boot as plain shell commands (partx, btrfs device scan, mount, swapon, the
#                  binds and overlays, a look at daemon.json): the floor of the work itself, without Ansible
# and, once each: the modules the everyday path ran (from a result callback), and the first boot on 1, 2 and 3 disks.
set -euo pipefail

# shellcheck source-path=SCRIPTDIR source=../../scripts/lib/env.sh
. "$(dirname -- "${BASH_SOURCE[0]}")/../../scripts/lib/env.sh"
ROUNDS=${1:-7}
[ "$(id -u)" -eq 0 ] || { echo "bench: run as root" >&2; exit 1; }
bash "$LW_ROOT/scripts/setup" >/dev/null 2>&1

WRAPPER=$LW_ROOT/roles/boot_hook/files/lightwhale-persistence-boot
CALLBACKS=$LW_ROOT/tests/integration/lwkit/callback_plugins
WORK=$(mktemp -d /tmp/lwbench-XXXXXX)
ROOT=$WORK/root
LOOPS=()
OTHER_LOOPS=()

# What a power-off does to the disks (default: the bench's two; or the loop devices given): swap off (by /dev path:
# /proc/swaps shows areas of an ended namespace without /dev), btrfs members and partitions forgotten by the kernel.
power_off() {
    local loop area
    local loops=("$@")
    [ "$#" -gt 0 ] || loops=("${LOOPS[@]}")
    while read -r area _; do
        for loop in "${loops[@]}"; do
            if [[ $(basename -- "$area") == "$(basename -- "$loop")"p* ]]; then
                swapoff "/dev/$(basename -- "$area")" 2>/dev/null || true
            fi
        done
    done < <(tail -n +2 /proc/swaps)
    for loop in "${loops[@]}"; do
        for area in "$loop"p*; do
            if [ -b "$area" ]; then btrfs device scan --forget "$area" >/dev/null 2>&1 || true; fi
        done
        partx -d "$loop" 2>/dev/null || true
    done
}

cleanup() {
    local loop
    power_off "${LOOPS[@]}" "${OTHER_LOOPS[@]}"
    for loop in "${LOOPS[@]}" "${OTHER_LOOPS[@]}"; do
        losetup -d "$loop" 2>/dev/null || true
    done
    rm -rf -- "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Ansible's own warnings on standard error (a deprecation in a library it imports) are kept in a file, shown when a
# boot fails.
ERRORS=$WORK/stderr
"$LW_VENV_OLD/bin/ansible-galaxy" collection build --force --output-path "$WORK" "$LW_ROOT" >/dev/null 2>"$ERRORS"
"$LW_VENV_OLD/bin/ansible-galaxy" collection install --force -p "$WORK/collections" \
    "$WORK"/lightwhale-persistence-*.tar.gz >/dev/null 2>&1

for i in 1 2; do
    truncate -s 1G "$WORK/d$i.img"
    LOOPS+=("$(losetup --find --show "$WORK/d$i.img")")
    echo "lightwhale-please-format-me" | dd conv=notrunc of="${LOOPS[-1]}" status=none
done
mkdir -p "$ROOT"/{etc/ssh,var/lib,home/op/.ssh,run,mnt/lightwhale-data}
echo "lightwhale" > "$ROOT/etc/hostname"
echo "ssh-ed25519 AAAA op@fleet" > "$ROOT/home/op/.ssh/authorized_keys"
cat > "$WORK/ping.yml" <<'EOF'
- name: One task
  hosts: localhost
  connection: local
  gather_facts: false
  tasks:
    - name: Ping
      ansible.builtin.ping:
EOF

export LIGHTWHALE_PERSISTENCE_CONFIG=/nonexistent LIGHTWHALE_PERSISTENCE_ROOT=$ROOT \
    LIGHTWHALE_PERSISTENCE_DEVICES="${LOOPS[*]}" LIGHTWHALE_PERSISTENCE_COLLECTIONS_PATH=$WORK/collections \
    LIGHTWHALE_PERSISTENCE_ANSIBLE_PLAYBOOK=$LW_VENV_OLD/bin/ansible-playbook
VARS="{\"lightwhale_persistence_root\": \"$ROOT\", \"lightwhale_persistence_devices\": [\"${LOOPS[0]}\", \"${LOOPS[1]}\"]}"

# The everyday boot as plain shell commands, for the inner bash of boot_once (DEVS: the disks): the floor of the work.
# shellcheck disable=SC2016 # the script is for the inner bash, which expands it
SHELL_BOOT='
    R=$LIGHTWHALE_PERSISTENCE_ROOT S=$R/mnt/lightwhale-data/lightwhale-state
    for disk in $DEVS; do partx --add "$disk"; done
    data=$(blkid -o device -t LABEL=lightwhale-data "${DEVS%% *}p2")
    btrfs device scan $(for disk in $DEVS; do echo "${disk}p2"; done) > /dev/null
    mount -o subvol=/@lightwhale-data "$data" "$R/mnt/lightwhale-data"
    mount -o subvol=/@lightwhale-state "$data" "$S"
    for disk in $DEVS; do swapon "${disk}p1"; done
    for dir in etc var home; do
        lower=$R/run/lightwhale/overlay/lower/$dir
        mkdir -p "$lower"
        mount --bind "$R/$dir" "$lower" && mount --make-private "$lower" && mount -o remount,bind,ro "$lower"
        mount -t overlay overlay -o "lowerdir=$lower,upperdir=$S/overlay/upper/$dir,workdir=$S/overlay/work/$dir" "$R/$dir"
    done
    grep -q "\"data-root\": \"/mnt/lightwhale-data/lightwhale-state/docker\"" "$R/etc/docker/daemon.json"'

# boot_once KIND: one boot in a fresh namespace; prints its wall time (seconds) on the last line.
# KIND: ping | everyday | wrapper | second (everyday, then the same again: the time of the second run) | shell.
boot_once() {
    # shellcheck disable=SC2016 # the script is for the inner bash, which expands it
    unshare --mount --propagation private env KIND="$1" VARS="$VARS" PB="$LW_VENV_OLD/bin/ansible-playbook" \
        WRAPPER="$WRAPPER" PING="$WORK/ping.yml" DEVS="${LOOPS[*]}" SHELL_BOOT="$SHELL_BOOT" bash -c '
        set -e
        mount -t tmpfs -o mode=0755 lwbench-run "$LIGHTWHALE_PERSISTENCE_ROOT/run"
        eval "$(sh "$WRAPPER" env)"
        cd /
        playbook() { "$PB" lightwhale.persistence.boot -e "$VARS"; }
        if [ "$KIND" = second ]; then playbook > /dev/null; fi
        start=$(date +%s.%N)
        case $KIND in
            ping) "$PB" "$PING" ;;
            everyday | second) playbook ;;
            wrapper) sh "$WRAPPER" start ;;
            shell) eval "$SHELL_BOOT" ;;
        esac > /dev/null
        end=$(date +%s.%N)
        awk -v a="$start" -v b="$end" "BEGIN { printf \"%.3f\n\", b - a }"'
    power_off
}

# first_boot_on COUNT: a first boot on COUNT fresh magic loop disks under a root of their own; leaves its wall time in
# FIRST_BOOT (not run in a subshell: the loop devices it attaches must reach OTHER_LOOPS, which the cleanup detaches).
first_boot_on() {
    local count=$1 root=$WORK/root-$1 loops=() i vars out
    for i in $(seq 1 "$count"); do
        truncate -s 1G "$WORK/first-$count-$i.img"
        loops+=("$(losetup --find --show "$WORK/first-$count-$i.img")")
        OTHER_LOOPS+=("${loops[-1]}")
        echo "lightwhale-please-format-me" | dd conv=notrunc of="${loops[-1]}" status=none
    done
    mkdir -p "$root"/{etc,var/lib,home,run,mnt/lightwhale-data}
    vars="{\"lightwhale_persistence_root\": \"$root\", \"lightwhale_persistence_devices\": [$(printf '"%s",' "${loops[@]}" | sed 's/,$//')]}"
    # shellcheck disable=SC2016 # the script is for the inner bash, which expands it
    out=$(unshare --mount --propagation private env VARS="$vars" PB="$LW_VENV_OLD/bin/ansible-playbook" WRAPPER="$WRAPPER" \
        LIGHTWHALE_PERSISTENCE_ROOT="$root" bash -c '
        set -e
        mount -t tmpfs -o mode=0755 lwbench-run "$LIGHTWHALE_PERSISTENCE_ROOT/run"
        eval "$(sh "$WRAPPER" env)"
        cd /
        start=$(date +%s.%N)
        "$PB" lightwhale.persistence.boot -e "$VARS" > /dev/null
        end=$(date +%s.%N)
        awk -v a="$start" -v b="$end" "BEGIN { printf \"%.3f\n\", b - a }"' 2>"$ERRORS") || {
        echo "bench: the first boot on $count disk(s) failed:" >&2
        tail -20 "$ERRORS" >&2
        exit 1
    }
    power_off "${loops[@]}"
    FIRST_BOOT=$(tail -n 1 <<< "$out")
}

# summarize LABEL TIMES...: prints "LABEL median min (n runs)" and leaves the median in $MEDIAN.
summarize() {
    local label=$1
    shift
    MEDIAN=$(printf '%s\n' "$@" | sort -g | awk '{ t[NR] = $1 } END { print t[int((NR + 1) / 2)] }')
    printf '%-52s median %6.3f s   min %6.3f s   (%d runs)\n' "$label" "$MEDIAN" \
        "$(printf '%s\n' "$@" | sort -g | head -n 1)" "$#"
}

echo "bench: first boot (lays out 2 magic disks, RAID1, overlays, Docker) ..."
first=$(boot_once everyday 2>"$ERRORS") || { echo "bench: the first boot failed:" >&2; tail -20 "$ERRORS" >&2; exit 1; }
echo "bench: first boot took $(tail -n 1 <<< "$first") s"

# The modules of the everyday path, counted from a result callback (one more everyday boot).
# shellcheck disable=SC2016 # the script is for the inner bash, which expands it
unshare --mount --propagation private env VARS="$VARS" PB="$LW_VENV_OLD/bin/ansible-playbook" WRAPPER="$WRAPPER" \
    CALLBACKS="$CALLBACKS" RESULTS="$WORK/results.jsonl" bash -c '
    mount -t tmpfs -o mode=0755 lwbench-run "$LIGHTWHALE_PERSISTENCE_ROOT/run"
    eval "$(sh "$WRAPPER" env)"
    cd / && ANSIBLE_CALLBACK_PLUGINS=$CALLBACKS ANSIBLE_CALLBACKS_ENABLED=lwkit_results LWKIT_RESULTS_FILE=$RESULTS \
        "$PB" lightwhale.persistence.boot -e "$VARS" > /dev/null' 2>"$ERRORS"
power_off
modules=$("$LW_VENV_OLD/bin/python" - "$WORK/results.jsonl" <<'PY'
import collections, json, sys
runs = collections.Counter()
for line in open(sys.argv[1]):
    rec = json.loads(line)
    if rec.get("event") in ("ok", "failed") and str(rec.get("action", "")).startswith("lightwhale.persistence."):
        runs[rec["action"].rsplit(".", 1)[1]] += 1
print("%d (%s)" % (sum(runs.values()), ", ".join("%s x%d" % item for item in runs.items())))
PY
)

echo "bench: $ROUNDS rounds, each round one boot of every kind in turn (so that the load of this machine weighs on"
echo "bench: all kinds alike); $(nproc) CPU(s), load $(cut -d' ' -f1-3 /proc/loadavg), $("$LW_VENV_OLD/bin/ansible-playbook" --version 2>/dev/null | sed -n 1p)"
T_PING=() T_EVERYDAY=() T_WRAPPER=() T_SECOND=() T_SHELL=()
for _ in $(seq 1 "$ROUNDS"); do
    for kind in ping everyday wrapper second shell; do
        out=$(boot_once "$kind" 2>"$ERRORS") || {
            echo "bench: $kind failed:" >&2
            echo "$out" | tail -20 >&2
            tail -20 "$ERRORS" >&2
            exit 1
        }
        t=$(tail -n 1 <<< "$out")
        case $kind in
            ping) T_PING+=("$t") ;;
            everyday) T_EVERYDAY+=("$t") ;;
            wrapper) T_WRAPPER+=("$t") ;;
            second) T_SECOND+=("$t") ;;
            shell) T_SHELL+=("$t") ;;
        esac
    done
done
summarize "1. one-task playbook (ansible.builtin.ping)" "${T_PING[@]}"
PING=$MEDIAN
summarize "2. everyday boot (ansible-playbook ...boot)" "${T_EVERYDAY[@]}"
EVERYDAY=$MEDIAN
summarize "3. everyday boot through the wrapper" "${T_WRAPPER[@]}"
WRAPPED=$MEDIAN
summarize "4. the boot run again (nothing to do)" "${T_SECOND[@]}"
summarize "5. the everyday boot as plain shell commands" "${T_SHELL[@]}"
echo "modules run on the everyday path: $modules"
awk -v b="$EVERYDAY" -v p="$PING" 'BEGIN { printf "ratio everyday boot / ping (medians): %.2f\n", b / p }'
awk -v w="$WRAPPED" -v b="$EVERYDAY" 'BEGIN { printf "the wrapper adds (medians): %.3f s\n", w - b }'
echo "bench: first boots (one run each) ..."
first_boot_on 1
printf '%-52s %6.3f s\n' "first boot, 1 disk (single/dup)" "$FIRST_BOOT"
printf '%-52s %6.3f s\n' "first boot, 2 disks (raid1/raid1)" "$(tail -n 1 <<< "$first")"
first_boot_on 3
printf '%-52s %6.3f s\n' "first boot, 3 disks (raid1/raid1c3)" "$FIRST_BOOT"
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
