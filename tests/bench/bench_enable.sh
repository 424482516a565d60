#!/usr/bin/env bash
# Benchmark: the enable playbook (no reboot) against N hosts on this machine, for N = 1, 5, 20 by default.
# Prints wall times per N with the forks used; asserts nothing about time. Run as root from the repo root:
#   bash tests/bench/bench_enable.sh [N ...]
# Environment: REPS (runs per figure, default 3), FORKS (default: N, at most 20), DISKS (loop disks per host, 2),
#              PIPELINING (ANSIBLE_PIPELINING, default 1), LW_BENCH_LOCAL=1 (skip the SSH hosts, see below),
#              LOGS=DIR (keep the inventory and the playbook output of every run there).
#
# Each "host" is an OpenSSH server (Debian's openssh-server, our own config, key authentication with a key made
# for the run) in a network namespace of its own, reached over a veth pair with private test addresses
# 10.213.<i>.1 (this side) / 10.213.<i>.2 (the namespace). Each host has its own sandbox root and DISKS sparse loop
# disks of 64 MiB, passed as lightwhale_persistence_root and _devices. Per N and run: the headers are wiped, then
#   1. ansible-playbook lightwhale.persistence.enable --check (the selector picks the disks: "would mark")
#   2. ansible-playbook lightwhale.persistence.enable          (marks them: magic_disk state=present)
# with a fresh SSH control path per run (cold connections, as a first fleet run). All hosts must succeed and, after
# run 2, every disk must carry the header. If network namespaces or sshd cannot be used here, the script says why
# and falls back to N local connections with distinct sandboxes, labelled "local" in the output.
#
# Everything this script creates (namespaces, veths, sshd processes by PID and their children, loop devices,
# SSH control masters, the work directory) is removed on exit, also on failure or Ctrl-C.
set -euo pipefail

# shellcheck source-path=SCRIPTDIR source=../../scripts/lib/env.sh
. "$(dirname -- "${BASH_SOURCE[0]}")/../../scripts/lib/env.sh"
[ "$(id -u)" -eq 0 ] || { echo "bench: run as root" >&2; exit 1; }
if [ "$#" -gt 0 ]; then SIZES=("$@"); else SIZES=(1 5 20); fi
REPS=${REPS:-3}
DISKS=${DISKS:-2}
PIPELINING=${PIPELINING:-1}
MAXN=$(printf '%s\n' "${SIZES[@]}" | sort -n | tail -n 1)
[ "$MAXN" -le 250 ] || { echo "bench: at most 250 hosts" >&2; exit 2; }

WORK=$(mktemp -d /tmp/lwbench-enable-XXXXXX)
TAG=$(basename -- "$WORK" | tail -c 5)   # names of our namespaces and links carry it
NETNS=()
SSHD_PIDS=()
LOOPS=()
CREATED_RUN_SSHD=0
MODE=ssh

log() { printf 'bench: %s\n' "$*" >&2; }

cleanup() {
    local pid child sock loop ns
    set +e
    # SSH control masters of our runs first, so the sessions on the servers end cleanly.
    for sock in "$WORK"/cp/*/*; do
        [ -S "$sock" ] && ssh -o ControlPath="$sock" -O exit lwbench >/dev/null 2>&1
    done
    for pid in "${SSHD_PIDS[@]}"; do
        for child in $(pgrep -P "$pid"); do kill "$child" 2>/dev/null; done
        kill "$pid" 2>/dev/null
    done
    for pid in "${SSHD_PIDS[@]}"; do
        for _ in 1 2 3 4 5 6 7 8 9 10; do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -9 "$pid" 2>/dev/null
    done
    for ns in "${NETNS[@]}"; do ip netns del "$ns" 2>/dev/null; done   # takes its end of the veth, and so the pair
    for loop in "${LOOPS[@]}"; do
        if [ "$(losetup -n -O BACK-FILE "$loop" 2>/dev/null)" = "${LOOP_IMAGE[$loop]:-}" ]; then
            losetup -d "$loop"
        fi
    done
    if [ "$CREATED_RUN_SSHD" = 1 ]; then rmdir /run/sshd 2>/dev/null; fi
    if [ -n "${LOGS:-}" ]; then mkdir -p -- "$LOGS" && cp -- "$WORK"/*.log "$WORK"/inventory.yml "$LOGS"/ 2>/dev/null; fi
    rm -rf -- "$WORK"
}
declare -A LOOP_IMAGE=()
trap cleanup EXIT
trap 'exit 130' INT TERM
trap 'log "failed: line $LINENO: $BASH_COMMAND"' ERR

: > "$WORK/ansible.cfg"
export ANSIBLE_COLLECTIONS_PATH="$WORK/collections" ANSIBLE_HOME="$WORK/ansible" ANSIBLE_LOCAL_TEMP="$WORK/ansible/tmp" \
    ANSIBLE_CONFIG="$WORK/ansible.cfg" ANSIBLE_DEPRECATION_WARNINGS=false ANSIBLE_HOST_KEY_CHECKING=false \
    ANSIBLE_RETRY_FILES_ENABLED=false ANSIBLE_PIPELINING=$PIPELINING ANSIBLE_NOCOLOR=1 ANSIBLE_STDOUT_CALLBACK=default
"$LW_VENV_OLD/bin/ansible-galaxy" collection build --force --output-path "$WORK" "$LW_ROOT" >/dev/null
"$LW_VENV_OLD/bin/ansible-galaxy" collection install --force -p "$WORK/collections" \
    "$WORK"/lightwhale-persistence-*.tar.gz >/dev/null 2>&1
CORE=$("$LW_VENV_OLD/bin/ansible" --version | sed -n '1s/.*core \([0-9.]*\).*/\1/p')

# --------------------------------------------------------------------------------------------- the hosts
why_not_ssh() {
    command -v sshd >/dev/null 2>&1 || [ -x /usr/sbin/sshd ] || { echo "no sshd (apt-get install openssh-server)"; return; }
    command -v ip >/dev/null 2>&1 || { echo "no ip (iproute2)"; return; }
    if ip -4 route show 10.213.0.0/16 | grep -q . || ip -4 addr show to 10.213.0.0/16 | grep -q .; then
        echo "10.213.0.0/16 is already in use on this machine"; return
    fi
    if ! ip netns add "lwb$TAG-probe" 2>"$WORK/netns.err"; then
        echo "ip netns add failed: $(cat -- "$WORK/netns.err")"; return
    fi
    ip netns del "lwb$TAG-probe"
}
if [ -n "${LW_BENCH_LOCAL:-}" ]; then
    MODE=local
    log "LW_BENCH_LOCAL set: N local connections with distinct sandboxes (no SSH)"
elif reason=$(why_not_ssh) && [ -n "$reason" ]; then
    MODE=local
    log "SSH hosts in network namespaces are not possible here: $reason"
    log "falling back to N local connections with distinct sandboxes (labelled 'local')"
fi

if [ "$MODE" = ssh ]; then
    SSHD=$(command -v sshd || echo /usr/sbin/sshd)
    ssh-keygen -q -t ed25519 -N '' -C lwbench -f "$WORK/id_ed25519"
    ssh-keygen -q -t ed25519 -N '' -C lwbench-host -f "$WORK/host_ed25519"
    cp -- "$WORK/id_ed25519.pub" "$WORK/authorized_keys"
    if [ ! -d /run/sshd ]; then mkdir -m 0755 /run/sshd; CREATED_RUN_SSHD=1; fi
fi

make_host() {
    local i=$1 ns veth_h veth_n d img loop devices=()
    mkdir -p -- "$WORK/hosts/h$i/root/run"
    for d in $(seq 1 "$DISKS"); do
        img=$WORK/hosts/h$i/d$d.img
        truncate -s 64M "$img"
        loop=$(losetup --find --show "$img")
        LOOPS+=("$loop")
        LOOP_IMAGE[$loop]=$img
        devices+=("\"$loop\"")
    done
    DEVICES[i]="[$(IFS=,; echo "${devices[*]}")]"
    [ "$MODE" = ssh ] || return 0
    ns=lwb$TAG-$i
    veth_h=lwbh$TAG$i
    veth_n=lwbn$TAG$i
    ip netns add "$ns"
    NETNS+=("$ns")
    ip link add "$veth_h" type veth peer name "$veth_n" netns "$ns"
    ip addr add "10.213.$i.1/30" dev "$veth_h"
    ip link set "$veth_h" up
    ip -n "$ns" link set lo up
    ip -n "$ns" addr add "10.213.$i.2/30" dev "$veth_n"
    ip -n "$ns" link set "$veth_n" up
    cat > "$WORK/hosts/h$i/sshd_config" <<EOF
ListenAddress 10.213.$i.2
Port 22
HostKey $WORK/host_ed25519
PidFile $WORK/hosts/h$i/sshd.pid
AuthorizedKeysFile $WORK/authorized_keys
PermitRootLogin prohibit-password
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
MaxStartups 100
MaxSessions 100
LogLevel ERROR
Subsystem sftp internal-sftp
EOF
    ip netns exec "$ns" "$SSHD" -D -f "$WORK/hosts/h$i/sshd_config" -E "$WORK/hosts/h$i/sshd.log" &
    SSHD_PIDS+=("$!")
}

DEVICES=()
log "making $MAXN host(s) ($MODE), $DISKS loop disk(s) of 64 MiB each"
for i in $(seq 1 "$MAXN"); do make_host "$i"; done

SSH_ARGS="-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR -o IdentitiesOnly=yes"
if [ "$MODE" = ssh ]; then
    for i in $(seq 1 "$MAXN"); do
        ok=0
        for _ in $(seq 1 100); do
            # shellcheck disable=SC2086 # SSH_ARGS is a list of options
            if ssh $SSH_ARGS -o BatchMode=yes -o ConnectTimeout=2 -i "$WORK/id_ed25519" "root@10.213.$i.2" true \
                2>/dev/null; then ok=1; break; fi
            sleep 0.1
        done
        [ "$ok" = 1 ] || { log "host $i: sshd at 10.213.$i.2 does not answer"; cat -- "$WORK/hosts/h$i/sshd.log" >&2; exit 1; }
    done
    log "all $MAXN sshd answer over their veth"
fi

{
    echo "all:"
    echo "  vars:"
    echo "    lightwhale_persistence_select: {count: $DISKS, min_size: 32M}"
    if [ "$MODE" = ssh ]; then
        echo "    ansible_user: root"
        echo "    ansible_ssh_private_key_file: $WORK/id_ed25519"
        echo "    ansible_ssh_common_args: '$SSH_ARGS'"
        echo "    ansible_python_interpreter: /usr/bin/python3"
    else
        echo "    ansible_connection: local"
        echo "    ansible_python_interpreter: /usr/bin/python3"
    fi
    echo "  hosts:"
    for i in $(seq 1 "$MAXN"); do
        echo "    h$i:"
        [ "$MODE" = ssh ] && echo "      ansible_host: 10.213.$i.2"
        echo "      lightwhale_persistence_root: $WORK/hosts/h$i/root"
        echo "      lightwhale_persistence_devices: ${DEVICES[i]}"
    done
} > "$WORK/inventory.yml"
printf -- '- name: The enable playbook\n  ansible.builtin.import_playbook: lightwhale.persistence.enable\n' > "$WORK/play.yml"

# --------------------------------------------------------------------------------------------- the runs
wipe_headers() {
    local loop
    for loop in "${LOOPS[@]:0:$(($1 * DISKS))}"; do
        dd if=/dev/zero of="$loop" bs=512 count=1 conv=notrunc,fsync status=none
    done
}

marked() {
    local loop n=0
    for loop in "${LOOPS[@]:0:$(($1 * DISKS))}"; do
        if head -c 27 "$loop" | cmp -s - <(printf lightwhale-please-format-me); then n=$((n + 1)); fi
    done
    echo "$n"
}

# run N FORKS KIND REP -> prints the wall seconds
run() {
    local n=$1 forks=$2 kind=$3 rep=$4 start end args=()
    [ "$kind" = check ] && args+=(--check)
    mkdir -p -- "$WORK/cp/$n-$forks-$kind-$rep"
    start=$(date +%s.%N)
    if ! ANSIBLE_SSH_CONTROL_PATH_DIR="$WORK/cp/$n-$forks-$kind-$rep" "$LW_VENV_OLD/bin/ansible-playbook" \
        -i "$WORK/inventory.yml" --limit "$(seq -s , -f 'h%g' 1 "$n")" -f "$forks" "${args[@]}" "$WORK/play.yml" \
        > "$WORK/run-$n-$forks-$kind-$rep.log" 2>&1; then
        log "ansible-playbook failed (N=$n, forks=$forks, $kind):"
        tail -n 40 "$WORK/run-$n-$forks-$kind-$rep.log" >&2
        exit 1
    fi
    end=$(date +%s.%N)
    awk -v a="$start" -v b="$end" 'BEGIN { printf "%.2f\n", b - a }'
}

summarise() {
    sort -g | awk '{ t[NR] = $1 } END { printf "%.2f %.2f\n", t[int((NR + 1) / 2)], t[1] }'
}

echo "# bench_enable: ansible-core $CORE, $(nproc) CPU(s), hosts: $MODE, $DISKS disk(s) per host, pipelining $PIPELINING, $REPS run(s) per figure"
printf '%-6s %-4s %-6s %-6s  %-15s %-15s %s\n' hosts N forks kind "median s" "min s" "s/host (median)"
for n in "${SIZES[@]}"; do
    forks=${FORKS:-$((n < 20 ? n : 20))}
    for kind in check mark; do
        times=()
        for rep in $(seq 1 "$REPS"); do
            wipe_headers "$n"
            times+=("$(run "$n" "$forks" "$kind" "$rep")")
            got=$(marked "$n")
            if [ "$kind" = check ] && [ "$got" -ne 0 ]; then log "check mode marked $got disk(s)"; exit 1; fi
            if [ "$kind" = mark ] && [ "$got" -ne $((n * DISKS)) ]; then
                log "after the run $got of $((n * DISKS)) disks carry the header"; exit 1
            fi
        done
        read -r median min < <(printf '%s\n' "${times[@]}" | summarise)
        printf '%-6s %-4s %-6s %-6s  %-15s %-15s %.2f\n' "$MODE" "$n" "$forks" "$kind" "$median" "$min" \
            "$(awk -v m="$median" -v n="$n" 'BEGIN { print m / n }')"
    done
done
