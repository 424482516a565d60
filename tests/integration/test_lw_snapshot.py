"""lightwhale.persistence.lw_snapshot and the boot's state step, through real Ansible runs on loop devices.

A host is a sandbox root with the sample image, booted by the real boot playbook in the test's private mount
namespace (its mounts stay to be used), so lw_snapshot runs against a mounted state as on a running host. A "reboot"
unmounts everything under the root, does what a power-off does to the kernel's view (swap off, partitions and btrfs
members forgotten), empties the root's /run/lightwhale, and boots again. Outcomes are read with the plain tools: the
files through the overlays, the subvolumes and read-only flags through a mount of the top level (btrfs subvolume
list, btrfs property get), signatures with blkid.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import threading

import pytest
from lwkit.boot import ok, power_off, status_of
from lwkit.overlay import make_image, umount_under
from lwkit.sysutil import run

pytestmark = [pytest.mark.needs_module(name) for name in ("magic_disk", "lw_datafs", "lw_overlay", "lw_snapshot")]

DATA = "mnt/lightwhale-data"
STATE = DATA + "/lightwhale-state"
DOCKER = STATE + "/docker"
REQUEST = DATA + "/.lightwhale-persistence/request.json"
QUIET = {"lightwhale_persistence_kernel_cmdline": "quiet"}


class Host:
    """A booted sandbox host on loop disks."""

    def __init__(self, boot, ansible, root, disks):
        self.boot_runner, self.ansible, self.root, self.disks = boot, ansible, root, disks

    def path(self, rel):
        return os.path.join(self.root, rel.lstrip("/"))

    def boot(self, expect_ok=True, **variables):
        res = self.boot_runner.boot(self.root, self.disks, variables=dict(QUIET, **variables))
        if expect_ok:
            ok(res)
        return res

    def reboot(self, expect_ok=True, **variables):
        left = umount_under(self.root)
        assert left == [], left
        power_off(self.disks)
        shutil.rmtree(self.path("run/lightwhale"), ignore_errors=True)
        return self.boot(expect_ok=expect_ok, **variables)

    def snap(self, check=False, **args):
        return self.ansible.run_module("lw_snapshot", dict(root=self.root, **args), check=check)

    def write(self, rel, text):
        os.makedirs(os.path.dirname(self.path(rel)), exist_ok=True)
        with open(self.path(rel), "w", encoding="utf-8") as fh:
            fh.write(text)

    def read(self, rel):
        try:
            with open(self.path(rel), encoding="utf-8") as fh:
                return fh.read()
        except FileNotFoundError:
            return None

    def data_partitions(self):
        return [disk.part(2) for disk in self.disks]

    def top(self):
        """A read-only mount of the filesystem's top level, for the test to look at (a context manager)."""
        return TopLook(self.data_partitions()[0])

    def status(self):
        return status_of(self.root)


class TopLook:
    """A mount of the top level, read-only unless C(writable) (for a test to change what an operator could change by
    hand); the context gives the object itself, its C(dir) the mount point."""

    def __init__(self, device, writable=False):
        self.device = device
        self.writable = writable

    def __enter__(self):
        self.dir = tempfile.mkdtemp(prefix="lwtest-top-")
        run(["mount", "-o", "subvolid=5" if self.writable else "ro,subvolid=5", self.device, self.dir])
        return self

    def __exit__(self, *exc):
        run(["umount", self.dir], check=False)
        os.rmdir(self.dir)

    def subvolumes(self):
        """The snapshots: subvolumes in @lightwhale-state-snapshots."""
        return [path for path in self.all_subvolumes() if path.startswith("@lightwhale-state-snapshots/")]

    def all_subvolumes(self):
        out = run(["btrfs", "subvolume", "list", self.dir]).stdout
        return sorted(line.split(" path ", 1)[1] for line in out.splitlines() if " path " in line)

    def read_only(self, rel):
        return run(["btrfs", "property", "get", "-ts", os.path.join(self.dir, rel), "ro"]).stdout.strip() == "ro=true"

    def read(self, rel):
        try:
            with open(os.path.join(self.dir, rel), encoding="utf-8") as fh:
                return fh.read()
        except FileNotFoundError:
            return None


@pytest.fixture
def host(boot, ansible, sandbox_root, magic_disk):
    make_image(sandbox_root)
    root = os.path.realpath(sandbox_root)
    disks = [magic_disk("512M", name="snap0")]
    machine = Host(boot, ansible, root, disks)
    first = machine.boot()
    assert machine.status()["mode"] == "persistent", first.explain()
    try:
        yield machine
    finally:
        umount_under(root)


def names(res):
    return [snap["name"] for snap in res["snapshots"]]


def good(res, changed):
    assert res.rc == 0 and not res.failed, res.explain()
    assert res.changed is changed, res.explain()
    return res


# ------------------------------------------------------------------------------------------ lw_snapshot states

def test_present_absent_pruned_each_run_twice_and_check_mode_writes_nothing(host):
    predicted = good(host.snap(check=True, name="one", description="first"), True)
    assert names(predicted) == ["one"] and predicted["snapshots"][0]["description"] == "first"
    with host.top() as top:
        assert top.subvolumes() == [], "check mode took a snapshot"

    made = good(host.snap(name="one", description="first"), True)
    assert names(made) == ["one"] and made["snapshots"][0]["kind"] == "manual"
    good(host.snap(name="one", description="first"), False)
    good(host.snap(name="one", important=True), True)
    again = good(host.snap(name="one", important=True), False)
    assert again["snapshots"][0]["important"] is True and again["snapshots"][0]["description"] == "first"
    with host.top() as top:
        assert top.subvolumes() == ["@lightwhale-state-snapshots/one"]
        assert top.read_only("@lightwhale-state-snapshots/one")
        meta = json.loads(top.read("@lightwhale-state-snapshots/.meta/one.json"))
        assert meta["important"] is True and meta["kind"] == "manual" and meta["time"].endswith("Z")

    for name in ("two", "three", "four"):
        good(host.snap(name=name), True)
    # Retention: keep the newest 1; "one" is important; check mode first.
    preview = good(host.snap(check=True, state="pruned", keep=1), True)
    assert names(preview) == ["one", "four"]
    with host.top() as top:
        assert len(top.subvolumes()) == 4
    pruned = good(host.snap(state="pruned", keep=1), True)
    assert names(pruned) == ["one", "four"]
    assert pruned["actions"] == ["two: delete (retention; committed)", "three: delete (retention; committed)"]
    good(host.snap(state="pruned", keep=1), False)
    # min_age: nothing is a day old.
    good(host.snap(state="pruned", keep=0, min_age="1d"), False)

    good(host.snap(check=True, state="absent", name="four"), True)
    good(host.snap(state="absent", name="four"), True)
    gone = good(host.snap(state="absent", name="four"), False)
    assert names(gone) == ["one"]
    with host.top() as top:
        assert top.subvolumes() == ["@lightwhale-state-snapshots/one"]
        assert top.read("@lightwhale-state-snapshots/.meta/four.json") is None


def test_rollback_brings_etc_var_home_and_docker_back_and_keeps_the_replaced_state(host):
    host.write("etc/motd", "good\n")
    host.write("var/lib/app/state", "good\n")
    host.write("home/op/notes", "good\n")
    host.write(DOCKER + "/volumes/v1/data", "good\n")
    host.write(DATA + "/keep-me", "data before\n")
    good(host.snap(name="good", description="known good"), True)

    host.write("etc/motd", "broken\n")
    host.write("var/lib/app/state", "broken\n")
    os.remove(host.path("home/op/notes"))
    host.write(DOCKER + "/volumes/v1/data", "broken\n")
    host.write("etc/new-file", "new\n")
    host.write(DATA + "/keep-me", "data after\n")

    good(host.snap(check=True, state="rolled_back", name="good"), True)
    assert not os.path.exists(host.path(REQUEST)), "check mode wrote the request"
    requested = good(host.snap(state="rolled_back", name="good"), True)
    pending = requested["pending"]
    assert pending["action"] == "rollback" and pending["target"] == "good" and pending["kept"].startswith(
        "before-rollback-")
    assert [snap["pending"] for snap in requested["snapshots"]] == [True]
    good(host.snap(state="rolled_back", name="good"), False)
    # Nothing changed under the mounted overlays.
    assert host.read("etc/motd") == "broken\n"

    second = host.snap(state="reset")
    assert second.failed and "a request is pending already (roll back to good" in second["msg"], second.explain()
    target = host.snap(state="absent", name="good")
    assert target.failed and "is the target of the pending request" in target["msg"], target.explain()

    res = host.reboot()
    assert host.read("etc/motd") == "good\n"
    assert host.read("var/lib/app/state") == "good\n"
    assert host.read("home/op/notes") == "good\n"
    assert host.read(DOCKER + "/volumes/v1/data") == "good\n"
    assert host.read("etc/new-file") is None
    # @lightwhale-data is never rolled back.
    assert host.read(DATA + "/keep-me") == "data after\n"
    status = host.status()
    assert status["state_change"] == "rolled back to good" and status["ok"] is True
    assert "rolled back to good" in status["summary"]
    assert "rolled back to good" in res.stdout
    assert not os.path.exists(host.path(REQUEST))

    kept = pending["kept"]
    with host.top() as top:
        assert top.subvolumes() == sorted(["@lightwhale-state-snapshots/good", "@lightwhale-state-snapshots/" + kept])
        assert "@lightwhale-state.new" not in top.all_subvolumes() and "@lightwhale-state.old" not in top.all_subvolumes()
        assert top.read_only("@lightwhale-state-snapshots/" + kept) and not top.read_only("@lightwhale-state")
        upper = "@lightwhale-state-snapshots/%s/overlay/upper" % kept
        assert top.read(upper + "/etc/motd") == "broken\n" and top.read(upper + "/etc/new-file") == "new\n"
        assert top.read("@lightwhale-state-snapshots/%s/docker/volumes/v1/data" % kept) == "broken\n"
    listed = good(host.snap(state="present", name="good"), False)
    assert {snap["name"]: snap["kind"] for snap in listed["snapshots"]} == {"good": "manual", kept: "kept"}
    assert listed["pending"] is None

    # The next boot does nothing more.
    host.reboot()
    assert host.status()["state_change"] is None and host.read("etc/motd") == "good\n"


def test_rollback_without_keeping_drops_the_replaced_state_and_cancel_drops_a_request(host):
    good(host.snap(name="base"), True)
    host.write("etc/motd", "later\n")
    good(host.snap(state="rolled_back", name="base", keep_current=False), True)
    good(host.snap(state="cancelled"), True)
    good(host.snap(state="cancelled"), False)
    host.reboot()
    assert host.read("etc/motd") == "later\n" and host.status()["state_change"] is None
    requested = good(host.snap(state="rolled_back", name="base", keep_current=False), True)
    assert requested["pending"]["kept"] is None
    host.reboot()
    assert host.read("etc/motd") == "Welcome to the image\n"
    with host.top() as top:
        assert top.subvolumes() == ["@lightwhale-state-snapshots/base"]


def test_reset_state_gives_a_fresh_empty_state_and_keeps_the_old_one(host):
    host.write("etc/motd", "configured\n")
    host.write(DOCKER + "/volumes/v1/data", "payload\n")
    host.write(DATA + "/keep-me", "data\n")
    requested = good(host.snap(state="reset"), True)
    kept = requested["pending"]["kept"]
    assert kept.startswith("before-reset-") and requested["pending"]["scope"] == "state"
    good(host.snap(state="reset"), False)
    host.reboot()
    assert host.read("etc/motd") == "Welcome to the image\n"
    assert host.read(DOCKER + "/volumes/v1/data") is None
    assert host.read(DATA + "/keep-me") == "data\n"
    assert host.status()["state_change"] == "reset the state (a fresh empty state)"
    # The boot put Docker's data root back into the fresh /etc.
    assert json.loads(host.read("etc/docker/daemon.json"))["data-root"] == "/" + DOCKER
    with host.top() as top:
        assert top.read("@lightwhale-state-snapshots/%s/overlay/upper/etc/motd" % kept) == "configured\n"


def test_reset_all_needs_the_uuid_then_wipes_the_disks_and_the_host_boots_volatile(host):
    listed = good(host.snap(state="present", name="x"), True)
    uuid = listed["uuid"]
    missing = host.snap(state="reset", reset="all")
    assert missing.failed and "confirm_uuid" in missing["msg"], missing.explain()
    wrong = host.snap(state="reset", reset="all", confirm_uuid="00000000-0000-0000-0000-000000000000")
    assert wrong.failed and uuid in wrong["msg"] and "nothing written" in wrong["msg"], wrong.explain()
    assert not os.path.exists(host.path(REQUEST))
    requested = good(host.snap(state="reset", reset="all", confirm_uuid=uuid), True)
    assert requested["pending"]["scope"] == "all" and requested["pending"]["kept"] is None

    res = host.reboot(expect_ok=False)
    assert res.rc == 0, res.explain()
    status = host.status()
    assert status["mode"] == "volatile" and status["ok"] is True, status
    assert status["state_change"].startswith("factory reset: the data filesystem %s was wiped" % uuid)
    disk = host.disks[0]
    assert run(["blkid", "-p", disk.path], check=False).stdout.strip() == ""
    assert disk.read(0, 27) != b"lightwhale-please-format-me"
    assert run(["sfdisk", "--dump", disk.path], check=False).returncode != 0
    # And it stays volatile: nothing left to find or to lay out.
    host.reboot()
    assert host.status()["mode"] == "volatile" and host.status()["state_change"] is None


def test_boot_snapshots_and_the_kernel_command_line_word(host):
    host.write("etc/motd", "boot 1\n")
    for n in (2, 3, 4):
        res = host.reboot(lightwhale_persistence_boot_snapshots=2)
        host.write("etc/motd", "boot %d\n" % n)
    boots = [snap for snap in good(host.snap(state="present", name="manual"), True)["snapshots"]
             if snap["kind"] == "boot"]
    assert len(boots) == 2 and all(snap["name"].startswith("boot-") for snap in boots), boots
    with host.top() as top:
        assert top.read("@lightwhale-state-snapshots/%s/overlay/upper/etc/motd" % boots[-1]["name"]) == "boot 3\n"
    # The newest boot snapshot is what the last boot found; a bad /etc now, then the word on the command line.
    host.write("etc/motd", "bad\n")
    word = dict(lightwhale_persistence_kernel_cmdline="quiet lightwhale.rollback")
    res = host.reboot(**word)
    newest = boots[-1]["name"]
    assert host.read("etc/motd") == "boot 3\n", res.stdout
    assert host.status()["state_change"] == "rolled back to %s" % newest
    # Left on the command line, the word does not roll back again.
    host.write("etc/motd", "fixed\n")
    host.reboot(**word)
    assert host.read("etc/motd") == "fixed\n" and host.status()["state_change"] is None
    # Taken off and put back, it does.
    host.reboot()
    host.reboot(**word)
    assert host.status()["state_change"] == "rolled back to %s" % newest
    assert host.read("etc/motd") == "boot 3\n"


# ------------------------------------------------------------------------------------------ refusals

@pytest.mark.parametrize("name, words", [
    ("a/b", "must not contain /"),
    ("..", "must not start with ."),
    (".hidden", "must not start with ."),
    ("", "must not be empty"),
    ("sp ace", "only letters, digits"),
    ("x" * 101, "at most 100 characters"),
])
def test_bad_names_are_refused_and_nothing_is_written(host, name, words):
    for state in ("present", "rolled_back", "absent"):
        res = host.snap(state=state, name=name)
        assert res.failed and words in res["msg"] and "Traceback" not in res.stdout + res.stderr, res.explain()
    with host.top() as top:
        assert top.subvolumes() == []
    assert not os.path.exists(host.path(REQUEST))


def test_unknown_names_nested_subvolumes_and_a_volatile_host_are_refused(host, ansible):
    res = host.snap(state="rolled_back", name="nowhere")
    assert res.failed and "there is no snapshot nowhere" in res["msg"], res.explain()
    good(host.snap(name="before-docker"), True)
    os.makedirs(host.path(DOCKER + "/btrfs/subvolumes"), exist_ok=True)
    run(["btrfs", "subvolume", "create", host.path(DOCKER + "/btrfs/subvolumes/layer1")])
    for args in (dict(name="with-layers"), dict(state="rolled_back", name="before-docker"), dict(state="reset")):
        res = host.snap(**args)
        assert res.failed and "nested subvolumes (docker/btrfs/subvolumes/layer1)" in res["msg"], res.explain()
    assert not os.path.exists(host.path(REQUEST))
    with host.top() as top:
        assert top.subvolumes() == ["@lightwhale-state-snapshots/before-docker"]
    run(["btrfs", "subvolume", "delete", host.path(DOCKER + "/btrfs/subvolumes/layer1")])

    umount_under(host.root)
    res = host.snap(name="volatile")
    assert res.failed and "there is no state to snapshot" in res["msg"], res.explain()


def test_two_runs_at_once_both_take_their_snapshot(host):
    results = {}

    def take(name):
        results[name] = host.snap(name=name)

    threads = [threading.Thread(target=take, args=(name,)) for name in ("left", "right")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for res in results.values():
        good(res, True)
    with host.top() as top:
        assert top.subvolumes() == ["@lightwhale-state-snapshots/left", "@lightwhale-state-snapshots/right"]
    leftovers = ("datafs-top-", "snapshot-look-")
    assert not [name for name in os.listdir(host.path("run/lightwhale")) if name.startswith(leftovers)]


def test_what_cannot_be_carried_out_at_boot_never_costs_the_host_its_state(host):
    """A request whose target was deleted by hand, a request file that is not ours, boot snapshots on a filesystem
    without the snapshots subvolume: the host boots persistent on the state it has, and says why."""
    good(host.snap(name="gone"), True)
    host.write("etc/motd", "current\n")
    good(host.snap(state="rolled_back", name="gone"), True)
    with TopLook(host.data_partitions()[0], writable=True) as look:
        run(["btrfs", "subvolume", "delete", os.path.join(look.dir, "@lightwhale-state-snapshots/gone")])
    host.reboot()
    status = host.status()
    assert status["mode"] == "persistent" and host.read("etc/motd") == "current\n", status
    assert status["state_change"].startswith("NOT carried out: roll back to gone") and "there is no snapshot gone" in \
        status["state_change"], status
    assert any("request stays pending" in warning for warning in status["warnings"]), status
    assert os.path.exists(host.path(REQUEST))

    host.write(REQUEST, '{"action": "format everything"}\n')
    host.reboot()
    status = host.status()
    assert status["mode"] == "persistent" and "not a request this collection wrote" in status["state_change"], status
    os.remove(host.path(REQUEST))

    with TopLook(host.data_partitions()[0], writable=True) as look:
        run(["btrfs", "subvolume", "delete", os.path.join(look.dir, "@lightwhale-state-snapshots")])
    host.reboot(lightwhale_persistence_boot_snapshots=2)
    status = host.status()
    assert status["mode"] == "persistent" and status["ok"] and host.read("etc/motd") == "current\n", status
    assert any("no subvolume @lightwhale-state-snapshots" in warning for warning in status["warnings"]), status
    res = host.snap(name="x")
    assert res.failed and "no subvolume @lightwhale-state-snapshots" in res["msg"], res.explain()


def test_two_boots_at_once_carry_a_rollback_out_once(host):
    host.write("etc/motd", "good\n")
    good(host.snap(name="good"), True)
    host.write("etc/motd", "bad\n")
    kept = good(host.snap(state="rolled_back", name="good"), True)["pending"]["kept"]
    left = umount_under(host.root)
    assert left == [], left
    power_off(host.disks)
    shutil.rmtree(host.path("run/lightwhale"), ignore_errors=True)
    gate = os.path.join(os.path.dirname(host.root), "gate")
    boots = [host.boot_runner.spawn(host.root, host.disks, variables=dict(QUIET), gate=gate) for _boot in range(2)]
    with open(gate, "w", encoding="utf-8"):
        pass
    results = [spawned.wait() for spawned in boots]
    for res in results:
        assert res.rc == 0, res.explain()
    changes = [rec["result"].get("state_change") for res in results for rec in res.results
               if str(rec.get("action", "")).endswith("lw_datafs") and rec.get("event") == "ok"]
    assert sorted(changes, key=str) == sorted([None, "rolled back to good"], key=str), changes
    assert host.read("etc/motd") == "good\n"
    with host.top() as top:
        assert top.subvolumes() == sorted(["@lightwhale-state-snapshots/good", "@lightwhale-state-snapshots/" + kept])
        assert "@lightwhale-state.new" not in top.all_subvolumes()


def test_persistence_info_lists_snapshots_and_the_pending_request(host, ansible):
    good(host.snap(name="listed", description="for the facts"), True)
    good(host.snap(state="rolled_back", name="listed"), True)
    info = ansible.run_module("persistence_info", dict(root=host.root, devices=[d.path for d in host.disks]))
    assert not info.failed, info.explain()
    assert [snap["name"] for snap in info["snapshots"]] == ["listed"] and info["snapshots"][0]["pending"] is True
    assert info["pending"]["target"] == "listed"
    assert info.changed is False
    assert not [name for name in os.listdir(host.path("run/lightwhale")) if name.startswith("snapshot-look-")]


def test_a_full_filesystem_gives_a_clear_error_or_a_whole_snapshot(host):
    good(host.snap(name="base"), True)
    # Fill the filesystem through @lightwhale-data until the kernel says no more.
    filler = host.path(DATA + "/filler")
    subprocess.run(["dd", "if=/dev/zero", "of=" + filler, "bs=1M", "count=4096", "status=none"], check=False)
    subprocess.run(["sync"], check=False)
    made = host.snap(name="full")
    requested = host.snap(state="rolled_back", name="base")
    for res in (made, requested):
        assert "Traceback" not in res.stdout + res.stderr, res.explain()
        if res.failed:
            assert "No space left on device" in res["msg"] and "datafs-top-" not in res["msg"], res.explain()
    with host.top() as top:
        # Refused or failed: nothing half-made is left; made: whole and read-only.
        assert top.subvolumes() == ["@lightwhale-state-snapshots/base"] + (
            [] if made.failed else ["@lightwhale-state-snapshots/full"])
        for sub in top.subvolumes():
            assert top.read_only(sub)
        if made.failed:
            assert top.read("@lightwhale-state-snapshots/.meta/full.json") is None
    assert os.path.exists(host.path(REQUEST)) is not requested.failed
    if not requested.failed:
        assert json.loads(host.read(REQUEST))["target"] == "base"
    print("full filesystem: snapshot %s; request %s" % (made.get("msg", "taken"), requested.get("msg", "written")))
    os.remove(filler)


# ------------------------------------------------------------------------------------------ the fleet playbook

PLAYBOOK = "- name: The collection's rollback playbook\n  ansible.builtin.import_playbook: lightwhale.persistence.rollback\n"


def fleet(host, check=False, **variables):
    extravars = dict(ansible_connection="local", lightwhale_persistence_root=host.root)
    extravars.update(variables)
    res = host.ansible.run_playbook(PLAYBOOK, extravars=extravars, check=check)
    lines = [line for line in res.stdout.splitlines() if '"msg": "localhost: ' in line]
    return res, [line.split('"msg": "', 1)[1].rstrip('"') for line in lines]


def test_the_rollback_playbook_snapshots_requests_and_cancels(host):
    host.write("etc/motd", "before the change\n")
    res, lines = fleet(host, check=True, lightwhale_persistence_snapshot="before-change")
    assert res.rc == 0 and lines == ["localhost: would snapshot before-change; 1 snapshot(s)"], res.stdout[-3000:]
    with host.top() as top:
        assert top.subvolumes() == []
    res, lines = fleet(host, lightwhale_persistence_snapshot="before-change",
                       lightwhale_persistence_snapshot_description="the change of the week")
    assert res.rc == 0 and lines == ["localhost: snapshot before-change; 1 snapshot(s)"], res.stdout[-3000:]
    res, lines = fleet(host, lightwhale_persistence_snapshot="before-change")
    assert lines == ["localhost: snapshot before-change (already so); 1 snapshot(s)"], res.stdout[-3000:]

    host.write("etc/motd", "after a bad change\n")
    res, lines = fleet(host, lightwhale_persistence_action="rollback", lightwhale_persistence_snapshot="before-change")
    assert res.rc == 0, res.stdout[-3000:]
    assert lines[0].startswith("localhost: request the rollback to before-change; 1 snapshot(s); at the next boot: "
                               "roll back to before-change, keeping the state in use as snapshot before-rollback-")
    res, lines = fleet(host, lightwhale_persistence_action="cancel")
    assert lines == ["localhost: cancel the pending request; 1 snapshot(s)"], res.stdout[-3000:]
    host.reboot()
    assert host.read("etc/motd") == "after a bad change\n"

    fleet(host, lightwhale_persistence_action="rollback", lightwhale_persistence_snapshot="before-change")
    host.reboot()
    assert host.read("etc/motd") == "before the change\n"
    missing, _lines = fleet(host, lightwhale_persistence_action="rollback", lightwhale_persistence_snapshot="nowhere")
    assert missing.rc != 0 and "there is no snapshot nowhere" in missing.stdout
