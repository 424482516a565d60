"""The whole boot sequence: `ansible-playbook lightwhale.persistence.boot` (role lightwhale.persistence.boot) and the
boot hook (roles/boot_hook/files), on loop devices, in a sandbox root with a sample image (lwkit.overlay).

Every run lists its loop disks and uses the sandbox root, with the environment the boot hook's wrapper sets (it
prints it: `lightwhale-persistence-boot env`). A "reboot" is a boot in a fresh private mount namespace (unshare),
whose mounts vanish when it ends, followed by what a power-off does to the kernel's view (swap off, partitions and
btrfs registrations forgotten). Outcomes are checked with the plain tools and /proc, not with the modules' words.
Swap is global: the kit's loop teardown swaps off every partition of the test's disks, also on failure.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import tempfile

import pytest
from lwkit.boot import (
    S11,
    UNIT,
    WRAPPER,
    findmnt,
    fs_df,
    hash_images,
    hook_environment,
    module_runs,
    ok,
    power_off,
    status_of,
    task_results,
)
from lwkit import blkid_probe
from lwkit.overlay import mount_table, tree
from lwkit.sysutil import read_swaps, run

pytestmark = [pytest.mark.needs_module(name) for name in ("magic_disk", "lw_datafs", "lw_overlay", "lw_status")]

DATA = "mnt/lightwhale-data"
STATE = DATA + "/lightwhale-state"
DOCKER = "/" + STATE + "/docker"
PROFILES = {1: ("single", "dup"), 2: ("raid1", "raid1"), 3: ("raid1", "raid1c3")}
EVERYDAY = {"lw_datafs": 1, "lw_overlay": 1}
SUMMARY_PREFIX = "lightwhale-persistence: "
FAIL_TASK = ("Summary - the line of the last status a step returned; fails when the host is not in the state its disks "
             "call for")


# ------------------------------------------------------------------------------------------ helpers

def path(root, rel):
    return os.path.join(root, rel.lstrip("/"))


def overlays_mounted(root):
    return [line.target[len(root):] for line in mount_table(root) if line.fstype == "overlay"]


def summary_of(res):
    """The summary line the role printed (the debug task 'Summary')."""
    recs = task_results(res, name_part="Summary")
    assert recs, "no summary printed\n" + res.explain()
    return recs[-1]["result"]["msg"]


def our_swaps(disks):
    names = tuple(os.path.basename(d.path) + "p" for d in disks)
    return sorted(s for s in read_swaps() if os.path.basename(s).startswith(names))


def image_tree(root):
    return {d: tree(path(root, d)) for d in ("etc", "var", "home")}


# ------------------------------------------------------------------------------------------ tests

@pytest.mark.parametrize("count", [1, 2, pytest.param(3, marks=pytest.mark.slow)])
def test_first_boot_on_n_magic_disks_then_nothing_changes(boot, box, magic_disks, count):
    disks = magic_disks(count)
    res = ok(boot.boot(box, disks), changed=True)

    data, state = path(box, DATA), path(box, STATE)
    assert findmnt(data)["fstype"] == "btrfs" and findmnt(data)["fsroot"] == "/@lightwhale-data"
    assert findmnt(state)["fsroot"] == "/@lightwhale-state"
    data_profile, metadata_profile = PROFILES[count]
    df = fs_df(data)
    assert df["Data"] == {data_profile} and df["Metadata"] == {metadata_profile}, df
    assert our_swaps(disks) == sorted(d.part(1) for d in disks)
    assert overlays_mounted(box) == ["/etc", "/var", "/home"]
    with open(path(box, "etc/docker/daemon.json"), encoding="utf-8") as fh:
        assert json.load(fh) == {"data-root": DOCKER, "storage-driver": "overlay2"}
    info = os.stat(path(box, DOCKER))
    assert stat.S_IMODE(info.st_mode) == 0o710 and (info.st_uid, info.st_gid) == (0, 0)
    # daemon.json went to the /etc overlay's upper layer, not into the image.
    assert os.path.exists(path(box, STATE + "/overlay/upper/etc/docker/daemon.json"))
    assert not os.path.exists(path(box, "run/lightwhale/overlay/lower/etc/docker"))

    status = status_of(box)
    members = [d.part(2) for d in disks]
    assert status["version"] == 1 and status["ok"] is True and status["failure"] is None, status
    assert status["mode"] == "persistent" and status["created"] is True and status["label"] == "lightwhale-data"
    assert status["devices"] == members and status["missing"] == []
    assert (status["data_profile"], status["metadata_profile"]) == PROFILES[count]
    assert status["swap_devices"] == [d.part(1) for d in disks]
    assert status["overlays"] == ["/etc", "/var", "/home"] and status["overlays_missing"] == []
    assert status["docker_data_root"] == DOCKER and status["time"].endswith("Z")
    assert stat.S_IMODE(os.stat(path(box, "run/lightwhale/persistence.json")).st_mode) == 0o644
    expected = (f"{SUMMARY_PREFIX}persistent {data_profile}/{metadata_profile} on {','.join(members)} "
                f"(created at this boot); swap {','.join(d.part(1) for d in disks)}; overlays /etc /var /home; "
                f"docker data-root {DOCKER}")
    assert summary_of(res) == status["summary"] == expected

    # The same boot run again (an operator, a restart of the unit): nothing to do, nothing written, and only the
    # everyday path's two modules ran.
    before = dict(status)
    again = ok(boot.boot(box, disks), changed=False)
    assert module_runs(again) == EVERYDAY, module_runs(again)
    assert status_of(box) == before
    assert summary_of(again) == expected


def test_no_magic_disk_boots_volatile(boot, box, loopdev, decoy):
    blank = loopdev("256M", name="blank")
    ext4, _what = decoy("ext4")
    disks = [blank, ext4]
    hashes = hash_images(disks)
    res = ok(boot.boot(box, disks), changed=True)

    tmpfs = findmnt(path(box, DATA))
    assert tmpfs["fstype"] == "tmpfs", tmpfs
    assert os.path.isdir(path(box, STATE))
    assert overlays_mounted(box) == ["/etc", "/var", "/home"]
    status = status_of(box)
    assert status["mode"] == "volatile" and status["ok"] is True and status["devices"] == [], status
    assert status["docker_data_root"] == DOCKER
    assert summary_of(res).startswith(SUMMARY_PREFIX + "volatile (tmpfs: nothing written survives a reboot); swap off;")
    # Steps 2-4 looked for magic disks and found none: only lw_datafs mounted anything.
    assert module_runs(res)["magic_disk"] == 1 and module_runs(res)["lw_datafs"] == 1
    assert hash_images(disks) == hashes, "a disk without the header was written to"

    ok(boot.boot(box, disks), changed=False)
    assert hash_images(disks) == hashes


def test_decoys_next_to_magic_disks_stay_byte_for_byte(boot, box, magic_disks, decoy):
    (magic,) = magic_disks(1)
    decoys = []
    for name in ("ext4", "gpt_partitions", "btrfs_other_label", "swap", "header_offset_1", "header_upper"):
        disk, _what = decoy(name)
        decoys.append(disk)
    hashes = hash_images(decoys)
    ok(boot.boot(box, [magic] + decoys), changed=True)
    status = status_of(box)
    assert status["mode"] == "persistent" and status["devices"] == [magic.part(2)], status
    assert hash_images(decoys) == hashes, "a decoy was written to"
    # A decoy's partitions are <decoy>p<N>: /dev/loop1 must not match another test's /dev/loop10p1.
    assert not any(s.startswith(tuple(d.path + "p" for d in decoys)) for s in read_swaps())


def test_check_mode_writes_nothing(boot, box, magic_disks):
    disks = magic_disks(2)
    hashes = hash_images(disks)
    hook_environment(box, "/nonexistent")  # Ansible's own workspace, <root>/run/lightwhale/ansible, made first
    before = tree(box)
    res = ok(boot.boot(box, disks, check=True, diff=True))
    assert hash_images(disks) == hashes
    after = tree(box)
    assert after == before, "check mode wrote into the sandbox"
    assert mount_table(box) == []
    # It predicted the first boot's layout (steps 2-4) and the mounts; the filesystem on partitions that do not exist
    # yet (step 5) is for the real run to make.
    changed = [rec["task"] for rec in res.results if rec.get("event") == "ok" and rec["result"].get("changed")]
    assert any("Steps 2-4" in name for name in changed) and any("Step 7" in name for name in changed), changed
    layout = task_results(res, action="magic_disk")[0]["result"]
    assert layout["magic_partitions"]["data"] == [d.part(2) for d in disks], layout

    # On the everyday path check mode predicts nothing to do, and writes nothing either.
    ok(boot.boot(box, disks), changed=True)
    status_bytes = open(path(box, "run/lightwhale/persistence.json"), "rb").read()
    hashes = hash_images(disks)
    state_tree = tree(path(box, STATE))
    again = ok(boot.boot(box, disks, check=True, diff=True), changed=False)
    assert module_runs(again) == EVERYDAY
    assert open(path(box, "run/lightwhale/persistence.json"), "rb").read() == status_bytes
    assert tree(path(box, STATE)) == state_tree


def test_reboot_keeps_what_was_written_to_etc_var_home(boot, box, magic_disks):
    disks = magic_disks(2)
    image = image_tree(box)
    write = f"""
        echo 'persistent motd' > "$ROOT/etc/motd"
        mkdir -p "$ROOT/var/lib/app" && echo state > "$ROOT/var/lib/app/state"
        echo 'ssh-ed25519 BBBB second@fleet' >> "$ROOT/home/op/.ssh/authorized_keys"
        rm "$ROOT/etc/hostname"
        echo payload > "$ROOT{DOCKER}/payload"
    """
    first, _out = boot.boot_in_namespace(box, disks, after=write)
    ok(first, changed=True)
    power_off(disks)
    assert mount_table(box) == [], "the first boot's mounts outlived its namespace"

    show = f"""
        cat "$ROOT/etc/motd" "$ROOT/var/lib/app/state" "$ROOT/home/op/.ssh/authorized_keys" "$ROOT{DOCKER}/payload"
        stat -c '%a %u %g' "$ROOT/home/op/.ssh/authorized_keys" "$ROOT/home/op/.ssh" "$ROOT/home/op"
        test -e "$ROOT/etc/hostname" && echo hostname-back || echo hostname-gone
        cat "$ROOT/run/lightwhale/persistence.json"
    """
    second, out = boot.boot_in_namespace(box, disks, after=show)
    ok(second, changed=True)
    lines = out.splitlines()
    assert lines[:6] == ["persistent motd", "state", "ssh-ed25519 AAAA op@fleet", "ssh-ed25519 BBBB second@fleet",
                         "payload", "600 1000 1000"], out
    assert lines[6:9] == ["700 1000 1000", "750 1000 1000", "hostname-gone"], out
    status = json.loads("\n".join(lines[9:]))
    assert status["mode"] == "persistent" and status["created"] is False and status["ok"], status
    # Nothing was formatted again; the image itself never changed.
    assert module_runs(second) == EVERYDAY, "\n".join(json.dumps(r)[:3000] for r in second.results)
    assert image_tree(box) == image
    power_off(disks)


def test_every_boot_reads_daemon_json_and_puts_back_the_data_root(boot, box, magic_disks):
    """Docker's data-root is read at every boot (inside the lw_overlay run, through the /etc overlay): an operator's
    edit that lost it is repaired at the next boot, every other key kept; a boot with nothing to repair writes
    nothing."""
    disks = magic_disks(1)
    lose = """printf '{"log-level": "warn"}\\n' > "$ROOT/etc/docker/daemon.json" """
    first, _out = boot.boot_in_namespace(box, disks, after=lose)
    ok(first, changed=True)
    power_off(disks)

    second, out = boot.boot_in_namespace(box, disks, after='cat "$ROOT/etc/docker/daemon.json"')
    ok(second, changed=True)
    assert json.loads(out) == {"log-level": "warn", "data-root": DOCKER, "storage-driver": "overlay2"}, out
    overlay = task_results(second, action="lw_overlay")[0]["result"]
    assert overlay["docker"]["previous_data_root"] is None
    assert [a for a in overlay["actions"] if a.startswith("docker:")] == [
        f"docker: {path(box, 'etc/docker/daemon.json')}: add data-root = {DOCKER}, storage-driver = overlay2 "
        "(1 other key(s) kept)"], overlay
    assert module_runs(second) == EVERYDAY
    power_off(disks)

    third, out = boot.boot_in_namespace(box, disks, after='cat "$ROOT/etc/docker/daemon.json"')
    overlay = task_results(ok(third, changed=True), action="lw_overlay")[0]["result"]
    assert not any(a.startswith("docker:") for a in overlay["actions"]), overlay["actions"]
    assert json.loads(out) == {"log-level": "warn", "data-root": DOCKER, "storage-driver": "overlay2"}
    power_off(disks)


def test_volatile_keeps_nothing_across_a_reboot(boot, box, loopdev):
    blank = loopdev("256M", name="blank")
    image = image_tree(box)
    first, _out = boot.boot_in_namespace(box, [blank], after='echo changed > "$ROOT/etc/motd"; cat "$ROOT/etc/motd"')
    ok(first, changed=True)
    assert _out.strip() == "changed"
    second, out = boot.boot_in_namespace(box, [blank], after='cat "$ROOT/etc/motd"')
    ok(second, changed=True)
    assert out.strip() == "Welcome to the image"
    assert image_tree(box) == image


def test_docker_daemon_json_is_merged_and_left_alone_once_right(boot, box, magic_disks):
    os.makedirs(path(box, "etc/docker"))
    original = '{\n    "log-driver": "journald",\n    "data-root": "/var/lib/docker",\n' \
               '    "registry-mirrors": ["https://mirror.example"]\n}\n'
    with open(path(box, "etc/docker/daemon.json"), "w", encoding="utf-8") as fh:
        fh.write(original)
    os.chmod(path(box, "etc/docker/daemon.json"), 0o600)
    disks = magic_disks(1)
    res = ok(boot.boot(box, disks), changed=True)

    config = path(box, "etc/docker/daemon.json")
    with open(config, encoding="utf-8") as fh:
        text = fh.read()
    assert list(json.loads(text).items()) == [("log-driver", "journald"), ("data-root", DOCKER),
                                              ("registry-mirrors", ["https://mirror.example"]),
                                              ("storage-driver", "overlay2")]
    assert stat.S_IMODE(os.stat(config).st_mode) == 0o600, "the file's mode was not kept"
    overlay = task_results(res, action="lw_overlay")[0]["result"]
    assert overlay["docker"]["previous_data_root"] == "/var/lib/docker"
    assert any(action.startswith("docker: ") and ": set data-root = " in action for action in overlay["actions"]), \
        overlay["actions"]
    # The image's file is untouched (it is the overlay's lower layer).
    with open(path(box, "run/lightwhale/overlay/lower/etc/docker/daemon.json"), encoding="utf-8") as fh:
        assert fh.read() == original

    # An operator reformats the file by hand: the next boots leave it byte for byte.
    hand = '{"log-driver":"journald","data-root":"%s","storage-driver":"overlay2"}\n' % DOCKER
    with open(config, "w", encoding="utf-8") as fh:
        fh.write(hand)
    mtime = os.stat(config).st_mtime_ns
    again = ok(boot.boot(box, disks), changed=False)
    overlay = task_results(again, action="lw_overlay")[0]["result"]
    assert not overlay["changed"] and overlay["docker"]["previous_data_root"] == DOCKER
    with open(config, encoding="utf-8") as fh:
        assert fh.read() == hand
    assert os.stat(config).st_mtime_ns == mtime


def test_a_broken_daemon_json_fails_the_boot_after_everything_else(boot, box, magic_disks):
    os.makedirs(path(box, "etc/docker"))
    with open(path(box, "etc/docker/daemon.json"), "w", encoding="utf-8") as fh:
        fh.write('{"log-driver": "journald",\n')
    disks = magic_disks(1)
    res = boot.boot(box, disks)
    assert res.rc == 2, res.explain()
    status = status_of(box)
    assert status["mode"] == "persistent" and status["ok"] is False and "not valid JSON" in status["failure"], status
    assert status["overlays"] == ["/etc", "/var", "/home"] and status["docker_data_root"] is None
    assert summary_of(res).startswith(SUMMARY_PREFIX + "FAILED: Docker")
    with open(path(box, "etc/docker/daemon.json"), encoding="utf-8") as fh:
        assert fh.read() == '{"log-driver": "journald",\n', "a broken file was overwritten"


def test_unmountable_data_filesystem_boots_volatile_and_exits_non_zero(boot, box, magic_disks):
    """Found, but the kernel refuses it (its data subvolume is gone): tmpfs, overlays, status, then exit 2."""
    disks = magic_disks(1)
    first, _out = boot.boot_in_namespace(box, disks)
    ok(first, changed=True)
    power_off(disks)
    assert status_of(box) is None, "the first boot's status file was on its own /run (a tmpfs)"
    top = path(box, "top")
    os.makedirs(top)
    run(["partx", "-u", disks[0].path])
    run(["mount", "-o", "subvolid=5", disks[0].part(2), top])
    try:
        run(["btrfs", "subvolume", "delete", os.path.join(top, "@lightwhale-data")])
    finally:
        run(["umount", top])
    before = (blkid_probe(disks[0].part(2)), run(["sfdisk", "--dump", disks[0].path]).stdout)

    res = boot.boot(box, disks)
    assert res.rc == 2, res.explain()
    assert findmnt(path(box, DATA))["fstype"] == "tmpfs"
    assert overlays_mounted(box) == ["/etc", "/var", "/home"]
    status = status_of(box)
    assert status["mode"] == "volatile" and status["ok"] is False and status["failure"], status
    assert summary_of(res).startswith(SUMMARY_PREFIX + "FAILED: ")
    assert "volatile (tmpfs" in summary_of(res)
    assert module_runs(res).get("magic_disk") is None, "a found filesystem must never lead to magic_disk"
    # Nothing was formatted or laid out (the kernel's refused mount may touch the superblock, so no hash here).
    assert (blkid_probe(disks[0].part(2)), run(["sfdisk", "--dump", disks[0].path]).stdout) == before
    failed = [rec for rec in res.results if rec.get("event") == "failed"]
    assert [rec["task"] for rec in failed] == ["lightwhale.persistence.boot : " + FAIL_TASK], failed


def test_raid1_member_missing_boots_degraded_and_says_so(boot, box, magic_disks):
    first, second = magic_disks(2)
    boot_one, _out = boot.boot_in_namespace(box, [first, second])
    ok(boot_one, changed=True)
    power_off([first, second])

    show = 'findmnt -n -o OPTIONS "$ROOT/mnt/lightwhale-data"; cat "$ROOT/run/lightwhale/persistence.json"'
    res, out = boot.boot_in_namespace(box, [first], after=show)
    ok(res, changed=True)
    options, _nl, document = out.partition("\n")
    assert "degraded" in options.split(","), out
    status = json.loads(document)
    assert status["mode"] == "degraded" and status["missing"] == ["devid 2"] and status["ok"] is True, status
    assert any("devid 2" in warning for warning in status["warnings"]), status
    assert status["summary"].startswith(SUMMARY_PREFIX + f"DEGRADED raid1/raid1 on {first.part(2)}, MISSING devid 2;")
    assert status["summary"].endswith(f"{len(status['warnings'])} warning(s) in /run/lightwhale/persistence.json")
    power_off([first, second])


def test_variables_reach_the_role(boot, box, magic_disks):
    disks = magic_disks(1)
    variables = {"lightwhale_persistence_swap": False, "lightwhale_persistence_docker": False,
                 "lightwhale_persistence_overlays": ["/home"],
                 "lightwhale_persistence_mount_options": ["noatime", "compress=zstd:5"]}
    res = ok(boot.boot(box, disks, variables=variables), changed=True)
    assert {"noatime", "compress=zstd:5"} <= set(findmnt(path(box, DATA))["options"].split(","))
    assert status_of(box)["mount_options"] == ["noatime", "compress=zstd:5"]
    assert "(noatime,compress=zstd:5)" in status_of(box)["summary"]
    assert run(["sfdisk", "--dump", disks[0].path]).stdout.count("name=") == 1, "a swap partition was made"
    assert our_swaps(disks) == []
    assert overlays_mounted(box) == ["/home"]
    assert not os.path.exists(path(box, "etc/docker"))
    status = status_of(box)
    assert status["swap_devices"] == [] and status["docker_data_root"] is None and status["overlays"] == ["/home"]
    overlay = task_results(res, action="lw_overlay")[0]["result"]
    assert "docker" not in overlay and not any(action.startswith("docker:") for action in overlay["actions"])


def test_a_mount_option_not_safe_at_boot_is_named_and_nothing_is_written(boot, box, magic_disks):
    disks = magic_disks(1)
    hashes = hash_images(disks)
    res = boot.boot(box, disks, variables={"lightwhale_persistence_mount_options": ["nodatacow"]})
    assert res.rc != 0, res.explain()
    status = status_of(box)
    assert "'nodatacow' is not allowed" in status["failure"], status
    assert hash_images(disks) == hashes and findmnt(path(box, DATA)) is None


def test_bad_variables_are_refused_before_anything_runs(boot, box, magic_disks):
    disks = magic_disks(1)
    hashes = hash_images(disks)
    res = boot.boot(box, disks, variables={"lightwhale_persistence_swap": "sometimes"})
    assert res.rc != 0 and "lightwhale_persistence_swap" in res.stdout, res.explain()
    assert hash_images(disks) == hashes and status_of(box) is None and mount_table(box) == []


def test_read_only_root_writes_nothing_outside_run_data_and_overlays(boot, ansible, box, magic_disks):
    """As on Lightwhale: the whole sandbox root is read-only but for a fresh tmpfs on /run, and so are the image's
    etc, var and home (binds of their own), the installed collection, the Python environment Ansible runs from and
    the real HOME. The boot succeeds, its writes land on the data filesystem and /run, and nothing else changes."""
    os.makedirs(path(box, DATA))  # in the image, as on a real one: the mount point cannot be made on a read-only root
    disks = magic_disks(2)
    image = {key: value for key, value in tree(box).items() if key != "run" and not key.startswith("run/")}
    home = os.path.expanduser("~")
    readonly = [path(box, d) for d in ("etc", "var", "home")] + [
        ansible.collections_dir, os.path.dirname(os.path.dirname(ansible.python)), home]
    lines = ['umount "$ROOT/run"', 'mount --bind "$ROOT" "$ROOT" && mount -o remount,bind,ro "$ROOT" || exit 91']
    lines += [f'mount --bind "{p}" "{p}" && mount -o remount,bind,ro "{p}" || exit 92' for p in readonly]
    lines += ['mount -t tmpfs -o mode=0755 lwboot-run "$ROOT/run" || exit 93',
              'touch "$ROOT/etc/x" 2>/dev/null && exit 94', f'touch "{home}/x" 2>/dev/null && exit 95']
    after = """
        touch "$ROOT/run/lightwhale/overlay/lower/etc/x" 2>/dev/null && echo lower-writable || echo lower-ro
        echo hello > "$ROOT/etc/hello" && cat "$ROOT/etc/hello"
        cat "$ROOT/home/op/.ssh/authorized_keys"
        find "$ROOT/run" -xdev -maxdepth 2 | sed "s|^$ROOT||" | sort
    """
    res, out = boot.boot_in_namespace(box, disks, before="\n".join(lines), after=after)
    ok(res, changed=True)
    lines = out.splitlines()
    assert lines[:3] == ["lower-ro", "hello", "ssh-ed25519 AAAA op@fleet"], out
    # Under /run: the lock, the status file, the overlays' lower binds and Ansible's own files - nothing else.
    assert lines[3:] == ["/run", "/run/lightwhale", "/run/lightwhale/ansible", "/run/lightwhale/overlay",
                         "/run/lightwhale/persistence.json", "/run/lightwhale/persistence.lock"], out
    assert {key: value for key, value in tree(box).items() if key != "run" and not key.startswith("run/")} == image, \
        "the read-only root changed"
    power_off(disks)


def test_boot_hook_wrapper_runs_the_boot_and_prints_one_line(ansible, box, magic_disks):
    disks = magic_disks(1)
    env = dict(os.environ, LIGHTWHALE_PERSISTENCE_CONFIG="/nonexistent", LIGHTWHALE_PERSISTENCE_ROOT=box,
               LIGHTWHALE_PERSISTENCE_DEVICES=" ".join(d.path for d in disks),
               LIGHTWHALE_PERSISTENCE_COLLECTIONS_PATH=ansible.collections_dir,
               LIGHTWHALE_PERSISTENCE_ANSIBLE_PLAYBOOK=ansible.ansible_playbook)
    env = {k: v for k, v in env.items() if not k.startswith("ANSIBLE_")}
    start = subprocess.run(["sh", WRAPPER, "start"], capture_output=True, text=True, env=env, cwd="/", check=False)
    assert start.returncode == 0, start.stdout + start.stderr
    status = status_of(box)
    assert start.stdout == status["summary"] + "\n", start.stdout
    assert status["mode"] == "persistent"
    with open(path(box, "run/lightwhale/boot.log"), encoding="utf-8") as fh:
        log = fh.read()
    assert "PLAY RECAP" in log and "== exit status 0" in log
    assert stat.S_IMODE(os.stat(path(box, "run/lightwhale/ansible")).st_mode) == 0o700

    # What ran the boot: the command line here, with the collection's version (galaxy.yml of this checkout).
    hook = open(path(box, "run/lightwhale/boot-hook"), encoding="utf-8").read()
    assert hook.startswith(f"{SUMMARY_PREFIX}run from the command line, lightwhale.persistence {galaxy_version()}, ")
    for script in ([WRAPPER, "status"], [S11, "status"]):
        shown = subprocess.run(["sh"] + script, capture_output=True, text=True, check=False,
                               env=dict(env, LIGHTWHALE_PERSISTENCE_BOOT=WRAPPER))
        assert (shown.returncode, shown.stdout) == (0, status["summary"] + "\n" + hook), shown
    again = subprocess.run(["sh", S11, "start"], capture_output=True, text=True, check=False, cwd="/",
                           env=dict(env, LIGHTWHALE_PERSISTENCE_BOOT=WRAPPER))
    assert (again.returncode, again.stdout) == (0, status["summary"] + "\n"), again
    hook = open(path(box, "run/lightwhale/boot-hook"), encoding="utf-8").read()
    assert hook.startswith(f"{SUMMARY_PREFIX}run from S11persistence, lightwhale.persistence {galaxy_version()}, ")
    assert "changed=0" in open(path(box, "run/lightwhale/ansible/last-run.log"), encoding="utf-8").read()
    stop = subprocess.run(["sh", S11, "stop"], capture_output=True, text=True, check=False, env=env)
    assert stop.returncode == 0 and findmnt(path(box, DATA))["fstype"] == "btrfs"

    # A failure (an operator broke daemon.json): the wrapper passes the playbook's exit status on, and the one line
    # says why.
    with open(path(box, "etc/docker/daemon.json"), "w", encoding="utf-8") as fh:
        fh.write("[]\n")
    failing = subprocess.run(["sh", WRAPPER], capture_output=True, text=True, env=env, cwd="/", check=False)
    assert failing.returncode == 2, failing.stdout + failing.stderr
    assert failing.stdout.startswith(SUMMARY_PREFIX + "FAILED: Docker") and failing.stdout.count("\n") == 1
    shown = subprocess.run(["sh", WRAPPER, "status"], capture_output=True, text=True, env=env, check=False)
    assert shown.returncode == 1 and shown.stdout.splitlines()[0] == failing.stdout.strip()


def test_boot_hook_wrapper_under_busybox(ansible, box, magic_disks, tmp_path):
    """Lightwhale's userland is BusyBox: its sh, sed, grep, logger... run the wrapper and S11persistence."""
    busybox = shutil.which("busybox")
    if busybox is None:
        pytest.skip("busybox is not installed (scripts/setup installs it)")
    applets = tmp_path / "busybox"
    applets.mkdir()
    for name in ("sh", "sed", "grep", "mkdir", "chmod", "cat", "tail", "date", "logger", "printf", "echo", "sync"):
        os.symlink(busybox, applets / name)
    disks = magic_disks(1)
    env = {"PATH": f"{applets}:{os.path.dirname(ansible.python)}", "LIGHTWHALE_PERSISTENCE_CONFIG": "/nonexistent",
           "LIGHTWHALE_PERSISTENCE_ROOT": box, "LIGHTWHALE_PERSISTENCE_DEVICES": disks[0].path,
           "LIGHTWHALE_PERSISTENCE_COLLECTIONS_PATH": ansible.collections_dir, "LIGHTWHALE_PERSISTENCE_BOOT": WRAPPER}
    sh = str(applets / "sh")
    start = subprocess.run([sh, S11, "start"], capture_output=True, text=True, env=env, cwd="/", check=False)
    status = status_of(box)
    assert start.returncode == 0 and start.stdout == status["summary"] + "\n", start
    assert status["mode"] == "persistent" and status["ok"]
    for args in ([S11, "status"], [WRAPPER, "status"], [S11, "stop"]):
        shown = subprocess.run([sh] + args, capture_output=True, text=True, env=env, check=False)
        assert shown.returncode == 0, shown
        if args[1] == "stop":
            assert shown.stdout == ""
        else:
            assert shown.stdout.startswith(start.stdout + SUMMARY_PREFIX + "run from S11persistence, "), shown


def galaxy_version():
    with open(os.path.join(os.path.dirname(WRAPPER), "..", "..", "..", "galaxy.yml"), encoding="utf-8") as fh:
        return next(line.split(":", 1)[1].strip() for line in fh if line.startswith("version:"))


def test_boot_hook_wrapper_waits_for_late_disks_and_names_those_that_never_came(tmp_path, loopdev):
    """LIGHTWHALE_PERSISTENCE_WAIT_FOR: the boot waits for the disks; one that never comes is reported, exit 2."""
    disk = loopdev("64M", name="late")
    env = {"PATH": os.environ["PATH"], "LIGHTWHALE_PERSISTENCE_CONFIG": "/nonexistent",
           "LIGHTWHALE_PERSISTENCE_ROOT": str(tmp_path), "LIGHTWHALE_PERSISTENCE_ANSIBLE_PLAYBOOK": "true",
           "LIGHTWHALE_PERSISTENCE_WAIT_SECONDS": "2"}
    log = tmp_path / "run" / "lightwhale" / "boot.log"
    there = subprocess.run(["sh", WRAPPER, "start"], capture_output=True, text=True, check=False,
                           env=dict(env, LIGHTWHALE_PERSISTENCE_WAIT_FOR=disk.path))
    # `true` writes no status file: said, exit 0 passed on; the disk was there at once.
    assert there.returncode == 0 and "without a status file" in there.stdout, there
    assert f"== waited 0 s for {disk.path}: all there" in log.read_text()
    gone = f"{tmp_path}/no-such-disk"
    late = subprocess.run(["sh", WRAPPER, "start"], capture_output=True, text=True, check=False,
                          env=dict(env, LIGHTWHALE_PERSISTENCE_WAIT_FOR=f"{disk.path} {gone}"))
    assert late.returncode == 2, late
    line = f"{SUMMARY_PREFIX}expected disk(s) {gone} did not appear within 2 s"
    assert late.stdout.splitlines()[-1] == line
    assert f"== waited 2 s for {disk.path} {gone}: still missing {gone}" in log.read_text()
    shown = subprocess.run(["sh", WRAPPER, "status"], capture_output=True, text=True, env=env, check=False)
    assert shown.returncode == 3 and shown.stdout.splitlines()[-1] == line, shown
    bad = subprocess.run(["sh", WRAPPER, "start"], capture_output=True, text=True, check=False,
                         env=dict(env, LIGHTWHALE_PERSISTENCE_WAIT_FOR=disk.path, LIGHTWHALE_PERSISTENCE_WAIT_SECONDS="soon"))
    assert bad.returncode == 64 and "must be a number of seconds" in bad.stdout, bad


def test_boot_hook_wrapper_status_and_usage_without_a_boot(tmp_path):
    env = {"PATH": os.environ["PATH"], "LIGHTWHALE_PERSISTENCE_CONFIG": "/nonexistent",
           "LIGHTWHALE_PERSISTENCE_ROOT": str(tmp_path)}
    shown = subprocess.run(["sh", WRAPPER, "status"], capture_output=True, text=True, env=env, check=False)
    assert shown.returncode == 3 and "no status file" in shown.stdout
    bad = subprocess.run(["sh", WRAPPER, "reboot"], capture_output=True, text=True, env=env, check=False)
    assert bad.returncode == 64 and "usage" in bad.stderr
    relative = subprocess.run(["sh", WRAPPER, "env"], capture_output=True, text=True, check=False,
                              env=dict(env, LIGHTWHALE_PERSISTENCE_ROOT="srv"))
    assert relative.returncode == 64
    missing = subprocess.run(["sh", WRAPPER, "start"], capture_output=True, text=True, check=False,
                             env=dict(env, LIGHTWHALE_PERSISTENCE_ANSIBLE_PLAYBOOK="/nonexistent/ansible-playbook"))
    assert missing.returncode == 127 and "NOT set up" in missing.stdout
    quoted = subprocess.run(["sh", WRAPPER, "start"], capture_output=True, text=True, check=False,
                            env=dict(env, LIGHTWHALE_PERSISTENCE_ANSIBLE_PLAYBOOK="true",
                                     LIGHTWHALE_PERSISTENCE_DEVICES='/dev/"sdb'))
    assert quoted.returncode == 64 and "refusing" in quoted.stderr
    # The summary is read back with sed: quotes, backslashes and UTF-8 come out as they went in.
    os.makedirs(tmp_path / "run" / "lightwhale", exist_ok=True)
    line = SUMMARY_PREFIX + 'FAILED: a "quoted" \\ back\\"slash, \u00e9t\u00e9; volatile'
    with open(tmp_path / "run" / "lightwhale" / "persistence.json", "w", encoding="utf-8") as fh:
        fh.write(json.dumps({"version": 1, "ok": False, "summary": line, "warnings": []}, indent=2,
                            ensure_ascii=False) + "\n")
    shown = subprocess.run(["sh", WRAPPER, "status"], capture_output=True, text=True, env=env, check=False)
    assert (shown.returncode, shown.stdout) == (1, line + "\n"), shown
    exports = hook_environment(str(tmp_path), "/opt/collections")
    assert exports["ANSIBLE_COLLECTIONS_PATH"] == "/opt/collections"
    for name in ("HOME", "TMPDIR", "ANSIBLE_HOME", "ANSIBLE_LOCAL_TEMP", "ANSIBLE_REMOTE_TEMP",
                 "ANSIBLE_PERSISTENT_CONTROL_PATH_DIR", "ANSIBLE_SSH_CONTROL_PATH_DIR"):
        assert exports[name].startswith(f"{tmp_path}/run/lightwhale/ansible"), (name, exports[name])
    assert exports["ANSIBLE_GATHERING"] == "explicit" and exports["ANSIBLE_RETRY_FILES_ENABLED"] == "False"
    assert exports["ANSIBLE_CONFIG"] == f"{tmp_path}/run/lightwhale/ansible/ansible.cfg"
    assert os.path.isfile(exports["ANSIBLE_CONFIG"]) and exports["PYTHONDONTWRITEBYTECODE"] == "1"


# The role into an image directory; {extra}: more variables, indented for the role's vars.
BOOT_HOOK_PLAY = """
- hosts: localhost
  connection: local
  gather_facts: false
  roles:
    - role: lightwhale.persistence.boot_hook
      vars:
        lightwhale_persistence_boot_hook_root: {image}
        lightwhale_persistence_boot_hook_init: {init}
{extra}"""


@pytest.mark.parametrize("init", ["sysv", "systemd"])
def test_boot_hook_role_installs_into_an_image(ansible, lw_workdir, init):
    image = os.path.join(lw_workdir, "image")
    os.makedirs(os.path.join(image, "etc", "rcS.d"))
    play = BOOT_HOOK_PLAY.format(image=image, init=init, extra="""\
        lightwhale_persistence_boot_hook_collections_path: /opt/lw/collections
        lightwhale_persistence_boot_hook_ansible_playbook: /opt/ansible/bin/ansible-playbook
        lightwhale_persistence_boot_hook_boot_vars:
          lightwhale_persistence_swap: false
""")
    res = ansible.run_playbook(play)
    assert res.rc == 0, res.stdout + res.stderr
    assert res.stats["localhost"]["changed"] > 0
    wrapper = os.path.join(image, "usr/local/sbin/lightwhale-persistence-boot")
    assert open(wrapper, "rb").read() == open(WRAPPER, "rb").read()
    assert stat.S_IMODE(os.stat(wrapper).st_mode) == 0o755
    with open(os.path.join(image, "etc/default/lightwhale-persistence"), encoding="utf-8") as fh:
        config = fh.read()
    assert "LIGHTWHALE_PERSISTENCE_COLLECTIONS_PATH=/opt/lw/collections\n" in config
    assert "LIGHTWHALE_PERSISTENCE_ANSIBLE_PLAYBOOK=/opt/ansible/bin/ansible-playbook\n" in config
    with open(os.path.join(image, "etc/lightwhale/persistence-boot.yml"), encoding="utf-8") as fh:
        assert fh.read() == "---\nlightwhale_persistence_swap: false\n"
    if init == "sysv":
        script = os.path.join(image, "etc/init.d/S11persistence")
        assert open(script, "rb").read() == open(S11, "rb").read()
        assert stat.S_IMODE(os.stat(script).st_mode) == 0o755
        assert os.readlink(os.path.join(image, "etc/rcS.d/S11persistence")) == "/etc/init.d/S11persistence"
        assert not os.path.exists(os.path.join(image, "etc/systemd"))
    else:
        unit = os.path.join(image, "etc/systemd/system/lightwhale-persistence.service")
        assert open(unit, "rb").read() == open(UNIT, "rb").read()
        link = os.path.join(image, "etc/systemd/system/local-fs.target.wants/lightwhale-persistence.service")
        assert os.readlink(link) == "/etc/systemd/system/lightwhale-persistence.service"
        assert not os.path.exists(os.path.join(image, "etc/init.d"))
    # Idempotent, and the whole sandbox stays inside the image directory.
    again = ansible.run_playbook(play)
    assert again.rc == 0 and again.stats["localhost"]["changed"] == 0, again.stdout


def test_boot_hook_role_replaces_lightwhales_own_s11persistence_only_when_told(ansible, lw_workdir):
    image = os.path.join(lw_workdir, "image")
    os.makedirs(os.path.join(image, "etc", "init.d"))
    stock = os.path.join(image, "etc", "init.d", "S11persistence")
    with open(stock, "w", encoding="utf-8") as fh:
        fh.write("#!/bin/sh\n# Lightwhale's own persistence script\n")
    refused = ansible.run_playbook(BOOT_HOOK_PLAY.format(image=image, init="sysv", extra=""))
    assert refused.rc != 0
    assert "/etc/init.d/S11persistence in " + image in refused.stdout, refused.stdout[-3000:]
    assert "lightwhale_persistence_boot_hook_replace_stock=true" in refused.stdout
    # Nothing was installed: the image holds its own script only.
    assert sorted(os.listdir(image)) == ["etc"] and os.listdir(os.path.join(image, "etc")) == ["init.d"]
    assert open(stock, encoding="utf-8").read().endswith("Lightwhale's own persistence script\n")

    play = BOOT_HOOK_PLAY.format(image=image, init="sysv",
                                 extra="        lightwhale_persistence_boot_hook_replace_stock: true\n")
    replaced = ansible.run_playbook(play)
    assert replaced.rc == 0, replaced.stdout[-3000:]
    assert "Replaced the image's own /etc/init.d/S11persistence" in replaced.stdout
    assert open(stock, "rb").read() == open(S11, "rb").read()
    kept = os.path.join(image, "etc", "lightwhale", "S11persistence.stock")
    assert open(kept, encoding="utf-8").read().endswith("Lightwhale's own persistence script\n")
    assert stat.S_IMODE(os.stat(kept).st_mode) == 0o644  # not executable, and not where init looks
    again = ansible.run_playbook(play)
    assert again.rc == 0 and again.stats["localhost"]["changed"] == 0, again.stdout[-3000:]
    assert "Replaced the image's own" not in again.stdout


SYSTEM_PYTHON = "/usr/bin/python3"


def test_boot_hook_role_installs_as_a_non_root_build_user(ansible):
    """An image built by a non-root user (Buildroot): ownership is left to the image's device table."""
    setpriv = shutil.which("setpriv")
    assert setpriv, "setpriv (util-linux) is needed"
    assert os.access(SYSTEM_PYTHON, os.X_OK), f"{SYSTEM_PYTHON} is needed (Debian's python3)"
    base = tempfile.mkdtemp(prefix="lwtest-nonroot-", dir="/tmp")
    try:
        os.chmod(base, 0o755)
        coll = os.path.join(base, "collections", "ansible_collections", "lightwhale", "persistence")
        repo = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(WRAPPER))))
        shutil.copytree(os.path.join(repo, "roles", "boot_hook"), os.path.join(coll, "roles", "boot_hook"))
        shutil.copytree(os.path.join(repo, "meta"), os.path.join(coll, "meta"))
        shutil.copy(os.path.join(repo, "galaxy.yml"), coll)
        image, home = os.path.join(base, "image"), os.path.join(base, "home")
        os.makedirs(os.path.join(image, "etc", "rcS.d"))
        os.makedirs(home)
        for dirpath, dirnames, filenames in os.walk(base):
            for name in dirnames + filenames:
                os.chmod(os.path.join(dirpath, name), 0o755 if name in dirnames else 0o644)
        for target in (image, home):
            for dirpath, dirnames, filenames in os.walk(target):
                for name in [dirpath] + [os.path.join(dirpath, n) for n in dirnames + filenames]:
                    os.chown(name, 65534, 65534)
        os.chown(image, 65534, 65534)
        play = os.path.join(home, "play.yml")

        def run_as_nobody(extra):
            with open(play, "w", encoding="utf-8") as fh:
                fh.write(BOOT_HOOK_PLAY.format(image=image, init="sysv", extra=extra))
            env = {"PATH": os.environ["PATH"], "HOME": home, "LC_ALL": "C.UTF-8", "ANSIBLE_HOME": home,
                   "ANSIBLE_LOCAL_TEMP": os.path.join(home, "tmp"), "ANSIBLE_REMOTE_TEMP": os.path.join(home, "tmp"),
                   "ANSIBLE_COLLECTIONS_PATH": os.path.join(base, "collections"), "ANSIBLE_NOCOLOR": "1",
                   # The test venv's Python links into /root (mode 0700): the modules run on the system's.
                   "ANSIBLE_PYTHON_INTERPRETER": SYSTEM_PYTHON}
            return subprocess.run([setpriv, "--reuid=65534", "--regid=65534", "--clear-groups", ansible.ansible_playbook,
                                   "-i", "localhost,", play], capture_output=True, text=True, env=env, cwd=home,
                                  check=False, timeout=300)

        # With the defaults (owner and group root), a non-root user cannot install: chown is refused.
        refused = run_as_nobody("")
        assert refused.returncode != 0 and "chown" in refused.stdout.lower(), refused.stdout[-3000:]
        done = run_as_nobody("        lightwhale_persistence_boot_hook_owner: ''\n"
                             "        lightwhale_persistence_boot_hook_group: ''\n")
        assert done.returncode == 0, done.stdout[-3000:]
        script = os.path.join(image, "etc", "init.d", "S11persistence")
        assert open(script, "rb").read() == open(S11, "rb").read()
        assert os.stat(script).st_uid == 65534 and stat.S_IMODE(os.stat(script).st_mode) == 0o755
        assert os.readlink(os.path.join(image, "etc", "rcS.d", "S11persistence")) == "/etc/init.d/S11persistence"
    finally:
        shutil.rmtree(base, ignore_errors=True)


def test_hook_scripts_are_shellcheck_clean():
    if shutil.which("shellcheck") is None:
        pytest.skip("shellcheck is not installed")
    bench = os.path.join(os.path.dirname(WRAPPER), "..", "..", "..", "tests", "bench", "bench_boot.sh")
    for script in (WRAPPER, S11, os.path.normpath(bench)):
        proc = run(["shellcheck", script], check=False)
        assert proc.returncode == 0, proc.stdout
    for script in (WRAPPER, S11):
        assert run(["sh", "-n", script], check=False).returncode == 0
