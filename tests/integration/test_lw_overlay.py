"""lw_overlay (boot step 7) on real mounts in a sandbox root, never over this machine's /etc, /var, /home.

Every test builds a sample image (lwkit.overlay.SAMPLE_FILES: owners, modes, a symlink) under a fresh
sandbox root and puts the upper layers on a filesystem of their own mounted at <root>/mnt/lightwhale-data:
a tmpfs, or an ext4 on a loop device where a "reboot" must keep them. What is mounted is read from
/proc/self/mountinfo by the kit, not by the module's code.
"""

from __future__ import annotations

import errno
import os

import pytest
from lwkit.overlay import (
    make_image,
    mount_fs,
    mount_lines,
    mount_table,
    mount_tmpfs,
    overlay_options,
    tree,
    umount_under,
)
from lwkit.sysutil import run

pytestmark = pytest.mark.needs_module("lw_overlay")

DIRS = ("etc", "var", "home")
DATA = "mnt/lightwhale-data"
STATE = DATA + "/lightwhale-state"
LOCK_ENTRIES = ("run/lightwhale", "run/lightwhale/persistence.lock")


class Box:
    """A sandbox root with the sample image; paths of the layers as the module lays them out."""

    def __init__(self, root, ansible):
        self.root = root
        self.ansible = ansible
        self.image = {}

    def path(self, rel):
        return os.path.join(self.root, rel.lstrip("/"))

    def target(self, d):
        return self.path(d)

    def lower(self, d):
        return self.path("run/lightwhale/overlay/lower/" + d.lstrip("/"))

    def upper(self, d):
        return self.path(STATE + "/overlay/upper/" + d.lstrip("/"))

    def work(self, d):
        return self.path(STATE + "/overlay/work/" + d.lstrip("/"))

    def lw(self, check=False, diff=False, env=None, **args):
        args.setdefault("root", self.root)
        return self.ansible.run_module("lw_overlay", args, check=check, diff=diff, env=env)

    def snapshot(self):
        """Everything a run could change: the mount table under the root, the root's tree (but the run lock,
        which a real run takes even when it refuses) and the data filesystem's tree."""
        root_tree = {k: v for k, v in tree(self.root).items() if k not in LOCK_ENTRIES}
        data = self.path(DATA)
        return mount_lines(self.root), root_tree, tree(data) if os.path.isdir(data) else None

    def table(self):
        """The mount table under the root without mount ids (they differ between equal states)."""
        return [(m.target, m.fstype, m.source, m.root, m.ro, m.super_options) for m in mount_table(self.root)]


def _make_box(sandbox_root, ansible):
    box = Box(sandbox_root, ansible)
    make_image(sandbox_root)
    box.image = {d: tree(box.path(d)) for d in DIRS}
    return box


@pytest.fixture
def bare(sandbox_root, ansible):
    """The image under a sandbox root, no data filesystem; everything under the root unmounted at the end."""
    box = _make_box(sandbox_root, ansible)
    yield box
    left = umount_under(sandbox_root)
    assert not left, f"could not unmount {left}"


@pytest.fixture
def box(bare):
    """The image with a tmpfs as data filesystem."""
    mount_tmpfs(bare.path(DATA))
    os.makedirs(bare.path(STATE), 0o755)
    return bare


def assert_mounted(box, dirs=DIRS):
    """Each dir: a read-only bind of the image's dir on its lower, our overlay on the target, nothing else."""
    table = mount_table(box.root)
    for d in dirs:
        binds = [m for m in table if m.target == box.lower(d)]
        overlays = [m for m in table if m.target == box.target(d)]
        assert len(binds) == 1 and binds[0].ro and binds[0].fstype != "overlay", binds
        assert binds[0].root.endswith(box.target(d)), binds[0]
        assert len(overlays) == 1 and overlays[0].fstype == "overlay", overlays
        assert overlay_options(overlays[0]) == dict(lowerdir=box.lower(d), upperdir=box.upper(d),
                                                    workdir=box.work(d))


def assert_ok(result):
    assert not result.failed, result.explain()
    return result


def test_mounted_twice_changes_once(box):
    first = assert_ok(box.lw())
    assert first.changed
    assert_mounted(box)
    assert [o["path"] for o in first["overlays"]] == ["/etc", "/var", "/home"]
    assert all(o["mounted"] for o in first["overlays"])
    assert first["overlays"][0] == dict(path="/etc", target=box.target("etc"), lower=box.lower("etc"),
                                        upper=box.upper("etc"), work=box.work("etc"), mounted=True)
    lines = mount_lines(box.root)

    second = assert_ok(box.lw())
    assert not second.changed, second.explain()
    assert second["actions"] == []
    assert second["overlays"] == first["overlays"]
    assert mount_lines(box.root) == lines  # nothing stacked, nothing remounted


def test_check_mode_writes_nothing_and_predicts_the_real_run(box):
    before = box.snapshot()
    check = assert_ok(box.lw(check=True, diff=True))
    assert check.changed
    assert box.snapshot() == before  # no mount, no directory, no lock
    assert all(o["mounted"] for o in check["overlays"])

    real = assert_ok(box.lw(diff=True))
    assert real.changed
    assert real["actions"] == check["actions"]
    assert real["diff"] == check["diff"]  # the predicted mount table lines are the real ones
    assert real["diff"]["before"] == ""
    assert f"{box.target('etc')} overlay lowerdir={box.lower('etc')}," in real["diff"]["after"]
    assert f"{box.lower('home')} " in real["diff"]["after"]

    lines = mount_lines(box.root)
    again = assert_ok(box.lw(check=True, diff=True))
    assert not again.changed and again["actions"] == [] and "diff" not in again
    assert mount_lines(box.root) == lines

    down = assert_ok(box.lw(state="unmounted", check=True, diff=True))
    assert down.changed
    assert not any(o["mounted"] for o in down["overlays"])
    assert mount_lines(box.root) == lines
    real_down = assert_ok(box.lw(state="unmounted", diff=True))
    assert real_down["actions"] == down["actions"] and real_down["diff"] == down["diff"]
    assert real_down["diff"]["after"] == ""


def test_docker_and_status_twice_change_once_and_check_mode_predicts_them(box):
    """docker: data-root through the /etc overlay, read from its upper layer in check mode; record_status: this
    step's part of the status file. Check mode writes neither; a real run writes both; the next writes nothing."""
    docker = "/mnt/lightwhale-data/lightwhale-state/docker"
    os.makedirs(box.upper("etc") + "/docker")
    with open(box.upper("etc") + "/docker/daemon.json", "w", encoding="utf-8") as fh:
        fh.write('{"log-level": "warn"}\n')
    os.makedirs(box.path("etc/docker"))
    with open(box.path("etc/docker/daemon.json"), "w", encoding="utf-8") as fh:
        fh.write('{"image": "file"}\n')
    before = box.snapshot()
    check = assert_ok(box.lw(check=True, docker=True, record_status=True))
    assert box.snapshot() == before and not os.path.exists(box.path("run/lightwhale/persistence.json"))
    assert check["docker"]["previous_data_root"] is None
    predicted = [a for a in check["actions"] if a.startswith("docker:")]
    assert predicted == [f"docker: {box.path('etc/docker/daemon.json')}: add data-root = {docker}, storage-driver = "
                         "overlay2 (1 other key(s) kept)",
                         f"docker: {box.path(docker)}: create the data root (root, 0710)"], check["actions"]
    assert check["status"]["overlays"] == ["/etc", "/var", "/home"] and check["status"]["docker_data_root"] == docker

    real = assert_ok(box.lw(docker=True, record_status=True))
    assert real.changed and [a for a in real["actions"] if a.startswith("docker:")] == predicted
    with open(box.path("etc/docker/daemon.json"), encoding="utf-8") as fh:
        assert fh.read() == '{\n  "log-level": "warn",\n  "data-root": "%s",\n  "storage-driver": "overlay2"\n}\n' % docker
    status = real["status"]
    assert status["ok"] and status["overlays_missing"] == [] and status["docker_data_root"] == docker
    assert status["steps"] == {"overlay": {"overlays": ["/etc", "/var", "/home"], "docker_data_root": docker,
                                           "warnings": []}}

    again = assert_ok(box.lw(docker=True, record_status=True))
    assert not again.changed and again["actions"] == [] and again["status"] == status
    assert assert_ok(box.lw(check=True, docker=True, record_status=True))["actions"] == []


def test_docker_without_etc_warns_and_writes_nothing_into_the_image(box):
    result = assert_ok(box.lw(paths=["/var"], docker=True, record_status=True))
    assert "docker" not in result and not os.path.exists(box.path("etc/docker"))
    assert result["status"]["docker_data_root"] is None
    assert any("/etc has no overlay" in w for w in result["status"]["warnings"]), result["status"]


def test_a_broken_daemon_json_fails_after_the_overlays_and_is_recorded(box):
    os.makedirs(box.path("etc/docker"))
    with open(box.path("etc/docker/daemon.json"), "w", encoding="utf-8") as fh:
        fh.write("[1]\n")
    result = box.lw(docker=True, record_status=True)
    assert result.failed and result.msg.startswith("Docker data-root: ") and "JSON list" in result.msg, result.explain()
    assert_mounted(box)
    assert result["status"]["failure"] == result.msg and not result["status"]["ok"]
    with open(box.path("etc/docker/daemon.json"), encoding="utf-8") as fh:
        assert fh.read() == "[1]\n"


def test_first_run_actions_in_order(box):
    result = assert_ok(box.lw(paths=["/etc"]))
    e = "/etc: "
    assert result["actions"] == [
        e + f"create {box.lower('etc')} (owner 0:0, mode 0755)",
        e + f"create {box.upper('etc')} (owner 0:0, mode 0755)",
        e + f"create {box.work('etc')} (owner 0:0, mode 0755)",
        e + f"bind-mount {box.target('etc')} on {box.lower('etc')}",
        e + f"make {box.lower('etc')} private and read-only",
        e + f"mount overlay on {box.target('etc')} (lowerdir={box.lower('etc')},upperdir={box.upper('etc')},"
            f"workdir={box.work('etc')})",
    ]
    for made in ("run/lightwhale/overlay", "run/lightwhale/overlay/lower", STATE + "/overlay",
                 STATE + "/overlay/upper", STATE + "/overlay/work", STATE + "/overlay/work/etc"):
        info = os.lstat(box.path(made))
        assert (oct(info.st_mode & 0o7777), info.st_uid, info.st_gid) == (oct(0o755), 0, 0), made


def test_modes_and_owners_show_through(box):
    assert_ok(box.lw(paths=["/etc", "/var", "/home/op"]))
    for d in ("etc", "var"):
        assert tree(box.target(d)) == box.image[d]  # every file, dir and link: kind, mode, owner, content
    op = tree(box.target("home/op"))
    assert op == {k[3:] if k != "op" else ".": v for k, v in box.image["home"].items() if k.startswith("op")}
    assert op["."][1:4] == (0o750, 1000, 1000)
    assert op[".ssh"][1:4] == (0o700, 1000, 1000)
    assert op[".ssh/authorized_keys"][1:4] == (0o600, 1000, 1000)
    # The overlay's top directory shows its upper's owner and mode: the upper was made like the image's.
    upper = os.lstat(box.upper("home/op"))
    assert (upper.st_mode & 0o7777, upper.st_uid, upper.st_gid) == (0o750, 1000, 1000)
    above = os.lstat(box.upper("home"))
    assert (above.st_mode & 0o7777, above.st_uid, above.st_gid) == (0o755, 0, 0)


def test_writes_land_in_upper_and_survive_a_reboot(bare, loopdev):
    disk = loopdev("64M", name="data")
    run(["mkfs.ext4", "-q", "-F", disk.path])
    data = bare.path(DATA)
    mount_fs(disk.path, data)
    os.makedirs(bare.path(STATE))
    assert_ok(bare.lw())

    with open(bare.path("etc/hostname"), "w") as fh:
        fh.write("whale-42\n")
    os.makedirs(bare.path("var/lib/app"))
    with open(bare.path("var/lib/app/state"), "w") as fh:
        fh.write("kept\n")
    os.unlink(bare.path("etc/motd"))
    with open(bare.path("home/op/notes"), "w") as fh:
        fh.write("todo\n")
    os.chown(bare.path("home/op/notes"), 1000, 1000)

    # The writes are in the upper layers; the image, seen through the read-only lower binds, is unchanged.
    with open(os.path.join(bare.upper("etc"), "hostname")) as fh:
        assert fh.read() == "whale-42\n"
    assert os.path.isfile(os.path.join(bare.upper("var"), "lib/app/state"))
    for d in DIRS:
        assert tree(bare.lower(d)) == bare.image[d]
    with pytest.raises(OSError) as exc:
        open(os.path.join(bare.lower("etc"), "intruder"), "w")
    assert exc.value.errno == errno.EROFS

    # "Reboot": everything down, the data filesystem too, then mounted again.
    assert assert_ok(bare.lw(state="unmounted")).changed
    assert mount_table(bare.root) != [] and [m.target for m in mount_table(bare.root)] == [data]
    for d in DIRS:
        assert tree(bare.path(d)) == bare.image[d]  # the image itself never changed
    run(["umount", data])
    assert mount_table(bare.root) == []
    mount_fs(disk.path, data)
    assert assert_ok(bare.lw()).changed
    assert_mounted(bare)

    with open(bare.path("etc/hostname")) as fh:
        assert fh.read() == "whale-42\n"
    with open(bare.path("var/lib/app/state")) as fh:
        assert fh.read() == "kept\n"
    assert not os.path.lexists(bare.path("etc/motd"))  # the whiteout survived too
    notes = os.lstat(bare.path("home/op/notes"))
    assert (notes.st_uid, notes.st_gid) == (1000, 1000)
    assert tree(bare.path("home/op/.ssh")) == {
        k[len("op/.ssh/"):] if k != "op/.ssh" else ".": v for k, v in bare.image["home"].items()
        if k.startswith("op/.ssh")}


def test_unmounted_twice_and_in_reverse_order(box):
    assert_ok(box.lw())
    down = assert_ok(box.lw(state="unmounted"))
    assert down.changed
    assert down["actions"] == (
        [f"/{d}: unmount overlay {box.target(d)}" for d in reversed(DIRS)]
        + [f"/{d}: unmount bind {box.lower(d)}" for d in reversed(DIRS)])
    assert [m.target for m in mount_table(box.root)] == [box.path(DATA)]
    assert not any(o["mounted"] for o in down["overlays"])
    for d in DIRS:
        assert tree(box.path(d)) == box.image[d]
    again = assert_ok(box.lw(state="unmounted"))
    assert not again.changed and again["actions"] == []


def test_paths_are_mounted_in_the_order_given(box):
    os.makedirs(box.path("srv/my data"))
    paths = ["/home", "/srv/my data", "/etc"]
    result = assert_ok(box.lw(paths=paths))
    assert [o["path"] for o in result["overlays"]] == paths
    overlays = [m.target for m in mount_table(box.root) if m.fstype == "overlay"]
    assert overlays == [box.target(p) for p in paths]  # mountinfo lists mounts in the order they were made
    assert [a.split(":")[0] for a in result["actions"] if " overlay on " in a] == paths
    assert_mounted(box, ["home", "srv/my data", "etc"])
    assert not os.path.ismount(box.target("var"))
    assert not assert_ok(box.lw(paths=paths)).changed


# ---------------------------------------------------------------- refusals: clear error, nothing changed


def _plant_symlink(rel):
    def plant(box):
        outside = os.path.join(os.path.dirname(box.root), "outside")
        os.makedirs(outside, exist_ok=True)
        link = box.path(rel)
        os.makedirs(os.path.dirname(link), exist_ok=True)
        os.symlink(outside, link)
        return link, [link, "symbolic link"]

    return plant


def _foreign_overlay(box):
    other = os.path.join(os.path.dirname(box.root), "foreign")
    for sub in ("lower", "upper", "work"):
        os.makedirs(os.path.join(other, sub))
    run(["mount", "-t", "overlay", "-o", f"lowerdir={other}/lower,upperdir={other}/upper,"
         f"workdir={other}/work", "overlay", box.target("var")])
    return None, [box.target("var"), "already an overlay with other layers"]


def _submount(box):
    mount_tmpfs(box.path("var/cache"), size="1M")
    return None, [box.target("var"), box.path("var/cache"), "submounts"]


def _foreign_mount_on_lower(box):
    mount_tmpfs(box.lower("home"), size="1M")
    return None, [box.lower("home"), "not the bind of " + box.target("home")]


def _symlinked_target(box):
    os.rename(box.path("home"), box.path("home.real"))
    os.symlink("home.real", box.path("home"))
    return None, [box.path("home"), "symbolic link"]


@pytest.mark.parametrize("setup", [
    _plant_symlink(STATE + "/overlay/upper/home"),
    _plant_symlink(STATE + "/overlay/work/var"),
    _plant_symlink(STATE + "/overlay"),
    _plant_symlink("run/lightwhale/overlay/lower/etc"),
    _foreign_overlay,
    _submount,
    _foreign_mount_on_lower,
    _symlinked_target,
], ids=["symlink-upper", "symlink-work", "symlink-base", "symlink-lower", "foreign-overlay", "submount",
        "mount-on-lower", "symlink-target"])
def test_refused_before_anything_is_mounted(box, setup):
    link, words = setup(box)
    before = box.snapshot()
    result = box.lw()
    assert result.failed, result.explain()
    for word in words:
        assert word in result.msg, result.explain()
    assert result["problems"]
    assert box.snapshot() == before  # not even /etc, which comes first and is fine, was mounted
    if link:
        assert os.listdir(os.path.realpath(link)) == []  # nothing created through the link
    assert box.lw(check=True).failed  # check mode refuses the same


def test_a_planted_symlink_among_existing_layers_is_refused(box):
    """After a normal boot: someone replaces an upper directory with a link; the next boot refuses it."""
    assert_ok(box.lw(paths=["/etc"]))
    assert_ok(box.lw(paths=["/etc"], state="unmounted"))
    outside = os.path.join(os.path.dirname(box.root), "elsewhere")
    os.makedirs(outside)
    os.rename(box.upper("etc"), box.upper("etc") + ".old")
    os.symlink(outside, box.upper("etc"))
    result = box.lw(paths=["/etc"])
    assert result.failed and f"{box.upper('etc')} is a symbolic link" in result.msg, result.explain()
    assert mount_table(box.root)[0].target == box.path(DATA) and len(mount_table(box.root)) == 1
    assert os.listdir(outside) == []


@pytest.mark.parametrize("paths, words", [
    (["etc"], ["'etc' is not an absolute path"]),
    (["/etc", "/nope"], ["/nope does not exist"]),
    (["/etc/../var"], ["contains '..'"]),
    (["/var", "/var/lib"], ["nested"]),
    (["/etc", "/etc/"], ["/etc is listed twice"]),
    (["/run"], ["overlaps lower_base"]),
    (["/with,comma"], ["a comma", "overlayfs mount options cannot carry"]),
], ids=["relative", "missing", "dotdot", "nested", "twice", "base", "comma"])
def test_bad_paths_are_refused(box, paths, words):
    os.makedirs(box.path("with,comma"))
    before = box.snapshot()
    result = box.lw(paths=paths)
    assert result.failed, result.explain()
    for word in words:
        assert word in result.msg, result.explain()
    assert box.snapshot() == before


def test_relative_or_missing_root_is_refused(box):
    assert "not an absolute path" in box.lw(root="sandbox").msg
    assert "does not exist" in box.lw(root=box.path("nowhere")).msg


def test_shared_root_does_not_propagate_the_overlay_onto_its_lower(box):
    """On a host whose root mount is shared (systemd), a bind of /etc would join its peer group and the
    overlay mounted on /etc would appear on the bind too; the module makes the bind private first."""
    run(["mount", "--rbind", box.root, box.root])
    run(["mount", "--make-shared", box.root])
    assert_ok(box.lw())
    assert_mounted(box)
    assert not assert_ok(box.lw()).changed
    assert assert_ok(box.lw(state="unmounted")).changed
    assert not [m for m in mount_table(box.root) if m.fstype == "overlay" or "/run/" in m.target]


@pytest.mark.parametrize("crash_at", [
    "after:overlay-mkdir@2", "after:overlay-bind", "after:overlay-secure@2", "after:overlay-mount",
    "before:overlay-mount@3",
])
def test_a_killed_run_converges(box, crash_at):
    killed = box.lw(env={"LIGHTWHALE_PERSISTENCE_CRASH_AT": crash_at})
    assert killed.failed, killed.explain()
    assert assert_ok(box.lw()).changed
    assert_mounted(box)
    assert not assert_ok(box.lw()).changed


@pytest.mark.parametrize("crash_at", ["after:overlay-umount", "after:overlay-unbind@2"])
def test_a_killed_unmount_converges(box, crash_at):
    assert_ok(box.lw())
    killed = box.lw(state="unmounted", env={"LIGHTWHALE_PERSISTENCE_CRASH_AT": crash_at})
    assert killed.failed, killed.explain()
    assert assert_ok(box.lw(state="unmounted")).changed
    assert [m.target for m in mount_table(box.root)] == [box.path(DATA)]
    assert not assert_ok(box.lw(state="unmounted")).changed


def test_nothing_on_the_host_is_touched(box):
    """The module only ever mounts under the sandbox root (this machine's /etc is not an overlay)."""
    host = [line for line in mount_lines("/") if not line.split(" ")[4].startswith(box.root)]
    assert_ok(box.lw())
    assert [line for line in mount_lines("/") if not line.split(" ")[4].startswith(box.root)] == host
