# shellcheck shell=bash
# Sourced by the scripts in tests/vm/: paths, the recipe hashes, logging, small helpers.
#
#   LW_VM_DIR       tests/vm (this directory)
#   LW_VM_CACHE     $LW_CACHE/vm: base images (vm/<hash>/), code layers (vm/layer-<hash>/),
#                   the SSH key (vm/key/), running instances (vm/inst/<name>.<id>/)
#   LW_VM_FLAVOURS  systemd sysvinit
#
# Functions: vm_log, vm_die, vm_base_hash FLAVOUR, vm_base_dir FLAVOUR, vm_key, vm_free_port.

# shellcheck source-path=SCRIPTDIR source=../../scripts/lib/env.sh
. "$(dirname -- "${BASH_SOURCE[0]}")/../../scripts/lib/env.sh"

LW_VM_DIR=$LW_ROOT/tests/vm
LW_VM_CACHE=$LW_CACHE/vm
LW_VM_FLAVOURS="systemd sysvinit"
# The Debian release and mirror the image is built from (the same mirror the host's apt uses).
LW_VM_SUITE=bookworm
LW_VM_MIRROR=${LW_VM_MIRROR:-http://deb.debian.org/debian}
LW_VM_SECURITY_MIRROR=${LW_VM_SECURITY_MIRROR:-http://deb.debian.org/debian-security}
export LW_VM_DIR LW_VM_CACHE

vm_log() { printf '%s %s: %s\n' "$(date +%H:%M:%S)" "${0##*/}" "$*" >&2; }
vm_die() { vm_log "error: $*"; exit 1; }

vm_check_flavour() {
    case " $LW_VM_FLAVOURS " in
        *" $1 "*) ;;
        *) vm_die "unknown flavour '$1' (one of: $LW_VM_FLAVOURS)" ;;
    esac
}

# vm_base_hash FLAVOUR -> the hash of the base image's recipe: the build script, the guest files
# it copies in (common/ and the flavour's own), the pinned Python packages, the flavour, the suite.
vm_base_hash() {
    local flavour=$1
    {
        printf 'flavour=%s suite=%s\n' "$flavour" "$LW_VM_SUITE"
        cat -- "$LW_VM_DIR/build-image" "$LW_VM_DIR/image-requirements.txt"
        (cd -- "$LW_VM_DIR/guest" && find common "$flavour" -print0 | LC_ALL=C sort -z \
            | xargs -0 stat -c '%n %a' && find common "$flavour" -type f -print0 | LC_ALL=C sort -z \
            | xargs -0 sha256sum)
    } | sha256sum | cut -c1-16
}

vm_base_dir() { printf '%s/%s-%s\n' "$LW_VM_CACHE" "$1" "$(vm_base_hash "$1")"; }

# vm_key -> path of the private key the test VMs accept for root (made once, kept in the cache).
vm_key() {
    local key=$LW_VM_CACHE/key/id_ed25519
    if [ ! -f "$key" ] || [ ! -f "$key.pub" ]; then
        mkdir -p -- "$LW_VM_CACHE/key"
        chmod 700 -- "$LW_VM_CACHE/key"
        rm -f -- "$key" "$key.pub"
        ssh-keygen -q -t ed25519 -N '' -C lightwhale-vm-tests -f "$key" >/dev/null
    fi
    printf '%s\n' "$key"
}

# vm_free_port -> a TCP port that is free on 127.0.0.1 right now.
vm_free_port() {
    python3 -c 'import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])
s.close()'
}
