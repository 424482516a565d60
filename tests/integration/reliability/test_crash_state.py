"""Crash at any point converges, for the state step of the boot: a rollback, a reset of the state, a reset of
everything, the boot snapshot and its retention, the kernel command line's rollback word.

Each scenario prepares a host on one magic disk (a first boot, files in the overlays, lw_snapshot's request), powers
it off, then boots it with the crash point set (LIGHTWHALE_PERSISTENCE_CRASH_AT, as in test_crash.py): the module
SIGKILLs itself right after that step. Right after the crash the top level must still hold the state (or, only
between the renames of the fallback exchange, both staging names): never neither. The next boot must carry the
change through to the same end as an uninterrupted boot, and a boot after it must change nothing.

The points are written out by hand and compared with the trace of uninterrupted boots, so a new step cannot stay
untested.
"""

from __future__ import annotations

import os
import shutil
import tempfile

import pytest
from lwkit import figures
from lwkit.boot import BootRunner, ok, power_off, status_of
from lwkit.overlay import make_image, umount_under
from lwkit.sysutil import run

pytestmark = [pytest.mark.needs_module(name) for name in ("magic_disk", "lw_datafs", "lw_overlay", "lw_snapshot")]

CRASH_ENV = "LIGHTWHALE_PERSISTENCE_CRASH_AT"
TRACE_ENV = "LIGHTWHALE_PERSISTENCE_CRASH_TRACE"
CLAIM = "crash at any point converges"
DATA = "mnt/lightwhale-data"
STATE = DATA + "/lightwhale-state"
DOCKER = STATE + "/docker"
REQUEST = DATA + "/.lightwhale-persistence/request.json"
QUIET = "quiet"
WORD = "quiet lightwhale.rollback"

# The steps of each scenario's boot that are new to it (the everyday boot's own points are test_crash.py's).
SCENARIOS = {
    "rollback": ["mount-top", "keep-state", "stage-state", "swap-state", "delete-replaced", "unlock-state",
                 "request-done", "umount-top"],
    "reset-state": ["mount-top", "keep-state", "stage-state", "stage-read-only", "swap-state", "delete-replaced",
                    "unlock-state", "request-done", "umount-top"],
    "reset-all": ["umount-data", "reset-table", "reset-wipe", "reset-wipe", "reset-forget", "mount-tmpfs"],
    "boot-snapshot": ["mount-top", "boot-snapshot", "boot-prune", "umount-top"],
    "cmdline": ["mount-top", "cmdline-request", "keep-state", "stage-state", "swap-state", "delete-replaced",
                "unlock-state", "cmdline-done", "request-done", "umount-top"],
}
NEW_STEPS = {step for steps in SCENARIOS.values() for step in steps}
QUICK = {("rollback", "after:swap-state@1"), ("reset-state", "after:stage-state@1"),
         ("reset-all", "after:reset-table@1"), ("boot-snapshot", "after:boot-snapshot@1"),
         ("cmdline", "after:cmdline-request@1")}


def numbered(steps):
    seen = {}
    out = []
    for step in steps:
        seen[step] = seen.get(step, 0) + 1
        out.append(f"{step}@{seen[step]}")
    return out


def points():
    return [pytest.param(name, "after:" + action, id=f"{name}-after:{action}",
                         marks=() if (name, "after:" + action) in QUICK else pytest.mark.slow)
            for name, steps in SCENARIOS.items() for action in numbered(steps)]


class Boots(BootRunner):
    def __init__(self, ansible):
        super().__init__(ansible)
        self.extra = {}

    def environment(self, root, results_file, extra=None):
        env = super().environment(root, results_file, extra)
        env.update(self.extra)
        return env

    def with_env(self, extra, call, *args, **kwargs):
        self.extra = extra
        try:
            return call(*args, **kwargs)
        finally:
            self.extra = {}


class Host:
    def __init__(self, boots, ansible, root, disk):
        self.boots, self.ansible, self.root, self.disk = boots, ansible, root, disk

    def path(self, rel):
        return os.path.join(self.root, rel.lstrip("/"))

    def variables(self, cmdline=QUIET, snapshots=0):
        return {"lightwhale_persistence_kernel_cmdline": cmdline, "lightwhale_persistence_boot_snapshots": snapshots}

    def boot(self, changed=None, **kwargs):
        return ok(self.boots.boot(self.root, [self.disk], variables=self.variables(**kwargs)), changed=changed)

    def shutdown(self):
        left = umount_under(self.root)
        assert not left, left
        shutil.rmtree(self.path("run/lightwhale"), ignore_errors=True)
        power_off([self.disk])

    def snap(self, **args):
        res = self.ansible.run_module("lw_snapshot", dict(root=self.root, **args))
        assert not res.failed, res.explain()
        return res

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


class Top:
    """The top level of the data filesystem, mounted read-only for a look (the kernel scans the member first)."""

    def __init__(self, disk):
        self.disk = disk

    def __enter__(self):
        self.dir = tempfile.mkdtemp(prefix="lwtest-top-")
        run(["partx", "-u", self.disk.path], check=False)
        run(["mount", "-o", "ro,subvolid=5", self.disk.part(2), self.dir])
        return self

    def __exit__(self, *exc):
        run(["umount", self.dir], check=False)
        os.rmdir(self.dir)

    def names(self):
        return sorted(os.listdir(self.dir))

    def snapshots(self):
        return sorted(name for name in os.listdir(os.path.join(self.dir, "@lightwhale-state-snapshots"))
                      if not name.startswith("."))

    def metas(self):
        meta = os.path.join(self.dir, "@lightwhale-state-snapshots", ".meta")
        return sorted(name[:-5] for name in os.listdir(meta)) if os.path.isdir(meta) else []

    def read_only(self, rel):
        out = run(["btrfs", "property", "get", "-ts", os.path.join(self.dir, rel), "ro"]).stdout
        return out.strip() == "ro=true"

    def read(self, rel):
        try:
            with open(os.path.join(self.dir, rel), encoding="utf-8") as fh:
                return fh.read()
        except FileNotFoundError:
            return None


def prepare(host, scenario):
    """The host before the boot under test: its files, its snapshots, its request; then powered off. Returns what
    the check needs to know."""
    host.boot(snapshots=1 if scenario in ("boot-snapshot", "cmdline") else 0)
    facts = {}
    if scenario == "rollback":
        host.write("etc/motd", "good\n")
        host.write(DOCKER + "/volumes/v/data", "good\n")
        host.snap(name="good")
        host.write("etc/motd", "bad\n")
        host.write(DOCKER + "/volumes/v/data", "bad\n")
        facts["kept"] = host.snap(state="rolled_back", name="good")["pending"]["kept"]
    elif scenario == "reset-state":
        host.write("etc/motd", "configured\n")
        facts["kept"] = host.snap(state="reset")["pending"]["kept"]
    elif scenario == "reset-all":
        uuid = host.snap(state="present", name="x")["uuid"]
        host.snap(state="reset", reset="all", confirm_uuid=uuid)
    elif scenario == "boot-snapshot":
        host.shutdown()
        host.boot(snapshots=1)
        host.write("etc/motd", "second boot\n")
        facts["first"] = [s["name"] for s in host.snap(state="present", name="manual")["snapshots"]
                          if s["kind"] == "boot"]
        assert len(facts["first"]) == 1, facts
    elif scenario == "cmdline":
        host.write("etc/motd", "before\n")
        host.shutdown()
        host.boot(snapshots=1)
        host.write("etc/motd", "bad\n")
    host.shutdown()
    return facts


def crash_variables(scenario):
    if scenario == "boot-snapshot":
        return dict(snapshots=1)
    if scenario == "cmdline":
        return dict(cmdline=WORD)
    return {}


def never_neither(host, scenario):
    """Right after the crash: the state is there (or, between the renames of the fallback, both staging names)."""
    if scenario == "reset-all":
        return
    with Top(host.disk) as top:
        names = top.names()
        assert "@lightwhale-state" in names or {"@lightwhale-state.new", "@lightwhale-state.old"} <= set(names), names
    power_off([host.disk])


def converged(host, scenario, facts):
    """The end state of an uninterrupted boot of the scenario."""
    status = status_of(host.root)
    if scenario == "reset-all":
        assert status["mode"] == "volatile" and status["ok"], status
        assert run(["blkid", "-p", host.disk.path], check=False).stdout.strip() == ""
        assert run(["sfdisk", "--dump", host.disk.path], check=False).returncode != 0
        return
    assert status["mode"] == "persistent" and status["ok"], status
    assert not os.path.exists(host.path(REQUEST))
    with Top(host.disk) as top:
        names = top.names()
        assert "@lightwhale-state.new" not in names and "@lightwhale-state.old" not in names, names
        assert not top.read_only("@lightwhale-state")
        snapshots = top.snapshots()
        assert all(top.read_only("@lightwhale-state-snapshots/" + name) for name in snapshots)
        assert top.metas() == snapshots, (top.metas(), snapshots)
        if scenario == "rollback":
            assert host.read("etc/motd") == "good\n" and host.read(DOCKER + "/volumes/v/data") == "good\n"
            kept = "@lightwhale-state-snapshots/%s/" % facts["kept"]
            assert top.read(kept + "overlay/upper/etc/motd") == "bad\n"
            assert top.read(kept + "docker/volumes/v/data") == "bad\n"
            assert snapshots == sorted(["good", facts["kept"]])
        elif scenario == "reset-state":
            assert host.read("etc/motd") == "Welcome to the image\n"
            assert top.read("@lightwhale-state-snapshots/%s/overlay/upper/etc/motd" % facts["kept"]) == "configured\n"
            assert snapshots == [facts["kept"]]
        elif scenario == "boot-snapshot":
            boots = [name for name in snapshots if name.startswith("boot-")]
            assert len(boots) == 1 and boots != facts["first"], (boots, facts)
            assert top.read("@lightwhale-state-snapshots/%s/overlay/upper/etc/motd" % boots[0]) == "second boot\n"
        elif scenario == "cmdline":
            assert host.read("etc/motd") == "before\n"
            assert os.path.exists(host.path(DATA + "/.lightwhale-persistence/cmdline-rollback.done"))


@pytest.fixture(scope="module")
def boots(ansible):
    return Boots(ansible)


@pytest.fixture
def host(boots, ansible, sandbox_root, magic_disk):
    make_image(sandbox_root)
    machine = Host(boots, ansible, os.path.realpath(sandbox_root), magic_disk("512M", name="state0"))
    try:
        yield machine
    finally:
        umount_under(machine.root)


def read_trace(file):
    with open(file, encoding="utf-8") as fh:
        return fh.read().split()


@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
def test_the_points_are_every_step_a_real_boot_passes(host, scenario, lw_workdir):
    facts = prepare(host, scenario)
    trace = os.path.join(lw_workdir, "trace")
    host.boots.with_env({TRACE_ENV: trace}, host.boot, changed=True, **crash_variables(scenario))
    reached = [point[len("after:"):] for point in read_trace(trace) if point.startswith("after:")]
    new = [action for action in reached if action.split("@")[0] in NEW_STEPS - {"umount-data", "mount-tmpfs"}
           or (scenario == "reset-all" and action.split("@")[0] in ("umount-data", "mount-tmpfs"))]
    assert new == numbered(SCENARIOS[scenario]), reached
    converged(host, scenario, facts)


@pytest.mark.parametrize("scenario,point", points())
def test_the_state_step_killed_at_a_point_converges(host, scenario, point, lw_workdir):
    done = False
    try:
        facts = prepare(host, scenario)
        trace = os.path.join(lw_workdir, "crash.trace")
        env = {TRACE_ENV: trace, CRASH_ENV: point}
        res, _out = host.boots.with_env(env, host.boots.boot_in_namespace, host.root, [host.disk],
                                        variables=host.variables(**crash_variables(scenario)))
        assert res.rc != 0, res.explain()
        assert read_trace(trace)[-1] == point, read_trace(trace)[-5:]
        shutil.rmtree(host.path("run/lightwhale"), ignore_errors=True)
        power_off([host.disk])
        never_neither(host, scenario)

        host.boot(changed=True, **crash_variables(scenario))
        converged(host, scenario, facts)
        if (scenario, point) in QUICK and scenario != "boot-snapshot":
            # A boot snapshot is taken at every boot; the other scenarios have nothing left to do.
            host.shutdown()
            host.boot(**crash_variables(scenario))
            assert status_of(host.root)["state_change"] is None
            converged(host, scenario, facts)
        done = True
    finally:
        figures.add(CLAIM, "state step (rollback, reset, boot snapshot, rollback word): converged / injection points",
                    1 if done else 0, 1, "points")
