"""Bad input: every module, every option, given what an operator or a broken inventory may give it.

A table of cases, run through the real collection (one ansible-playbook run per module, one task per case, each
task `ignore_errors`). For every case:

- the outcome is the expected one: refused (most cases), or accepted where the input is legitimate (a symlink to a
  real disk such as /dev/disk/by-id/..., a root whose name holds spaces and shell metacharacters);
- a refusal is clear: the message names the device or path (or the option) and the reason;
- no Python traceback: no `exception`, no `module_stderr`, no "MODULE FAILURE", no "Traceback" in the result;
- nothing written: every loop disk of the module's batch and the sandbox root's file tree (kinds, modes, owners,
  contents) hash the same before and after; the shell payloads in the metacharacter cases never ran.

The option list comes from each module's argument_spec (read from the source with ast), and
test_the_table_covers_every_option fails when an option has no case, so a new option cannot go untested.

Never a host scan: every case that takes `devices` lists loop disks (or bad paths) explicitly. `devices: []`
means "scan the host" (docs/boot-sequence.md, safety rules): it is run only where the module refuses it before any probe
(magic_disk state=present/absent) - never for lw_datafs or magic_disk state=partitioned.
"""

from __future__ import annotations

import ast
import hashlib
import json
import os
import stat
from dataclasses import dataclass, field

import pytest

from lwkit import DATA_LABEL, MAGIC, SWAP_LABEL, figures, read_bytes, sha256_of, write_header
from lwkit.overlay import make_image
from lwkit.sysutil import run

REPO_ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))
MODULES = ("magic_disk", "lw_datafs", "lw_overlay", "docker_data_root", "lw_status", "persistence_info", "lw_snapshot")
FIGURE = ("bad input is refused cleanly", "cases with a clear error, no traceback, 0 bytes written")

pytestmark = [pytest.mark.needs_module(name) for name in MODULES]


# ------------------------------------------------------------------------------------------ the argument specs

def argument_spec(module):
    """{option: {type, elements, choices, default...}} of plugins/modules/<module>.py, read from its source."""
    with open(os.path.join(REPO_ROOT, "plugins", "modules", module + ".py"), encoding="utf-8") as fh:
        tree = ast.parse(fh.read())
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "AnsibleModule":
            for kw in node.keywords:
                if kw.arg == "argument_spec":
                    spec = {}
                    for opt in kw.value.keywords:
                        spec[opt.arg] = {k.arg: _literal(k.value) for k in opt.value.keywords}
                    return spec
    raise AssertionError(f"no AnsibleModule(argument_spec=...) in {module}")


def _literal(node):
    try:
        return ast.literal_eval(node)
    except ValueError:
        return "<expr>"


# ------------------------------------------------------------------------------------------ the cases

@dataclass
class Case:
    module: str
    why: str                   # what is wrong (or legitimate) about the input
    options: tuple             # the options this case exercises (coverage)
    args: dict
    expect: str = "fail"       # fail | ok | clean (either, as long as it is clean and writes nothing)
    needles: tuple = ()        # what a refusal's message must name (case-insensitive); any of a tuple inside
    check: bool = False        # run in check mode
    writes: tuple = ()         # names of the disks this (legitimate) case may write
    result: dict = field(default_factory=dict)

    @property
    def title(self):
        return f"{self.module}: {self.why}"


def wrong_type_value(spec):
    """A value of the wrong type for an option, and the words a refusal must hold."""
    kind = spec.get("type", "str")
    if kind == "bool":
        return "maybe", ("maybe",)
    if kind == "int":
        return "lots", ("lots",)
    if kind == "list":
        return {"not": "a list"}, ("list",)
    if "choices" in spec:
        return "no-such-choice", ("no-such-choice",)
    if kind == "path":
        # Ansible turns a list given for a path into its text "['x', 'y']": a relative path, refused as such.
        return ["x", "y"], (("absolute", "does not exist"),)
    return ["a", "b"], ()  # a str option: Ansible converts the list to its text; accepted or refused cleanly


class World:
    """The disks and paths the cases use, made once per batch."""

    def __init__(self, loopdev, lw_workdir, sandbox_root):
        self.dir = lw_workdir
        self.mounts = []
        self.root = os.path.realpath(sandbox_root)
        make_image(self.root)
        self.blank = loopdev("64M", name="blank")
        self.magic = loopdev("256M", name="magic")
        write_header(self.magic)
        self.target = loopdev("64M", name="target")  # the one a legitimate case writes the header on
        self.parted = loopdev("64M", name="parted")
        run(["sfdisk", "--quiet", "--no-reread", "--no-tell-kernel", self.parted.path],
            input="label: gpt\nsize=20M, name=first\nname=second\n")
        self.parted.rescan()
        write_header(self.parted.part(1))
        self.ro = loopdev("64M", name="read-only")  # with the header
        write_header(self.ro)
        self.ro_blank = loopdev("64M", name="read-only-blank")
        # Magic partitions (not formatted yet) on a read-only disk: what lw_datafs would format.
        self.ro_parts = loopdev("128M", name="read-only-parts")
        run(["sfdisk", "--quiet", "--no-reread", "--no-tell-kernel", self.ro_parts.path],
            input=f"label: gpt\nsize=16M, name={SWAP_LABEL}\nname={DATA_LABEL}\n")
        self.ro_parts.rescan()
        for disk in (self.ro, self.ro_blank, self.ro_parts):
            run(["blockdev", "--setro", disk.path])
        # ext4 leaves its first 1024 bytes alone: one mounted ext4 with a magic header there, one without.
        self.mnt = os.path.join(lw_workdir, "mnt")
        self.mounted = self._mounted_ext4(loopdev, "mounted", "mnt-plain")
        self.mounted_magic = self._mounted_ext4(loopdev, "mounted-magic", "mnt-magic", header=True)
        # Magic partitions whose data partition holds a mounted ext4.
        self.mounted_parts = loopdev("128M", name="mounted-parts")
        run(["sfdisk", "--quiet", "--no-reread", "--no-tell-kernel", self.mounted_parts.path],
            input=f"label: gpt\nsize=16M, name={SWAP_LABEL}\nname={DATA_LABEL}\n")
        self.mounted_parts.rescan()
        self._mounted_ext4(None, self.mounted_parts.part(2), "mnt-parts")
        self.disks = [self.blank, self.magic, self.target, self.parted, self.ro, self.ro_blank, self.ro_parts,
                      self.mounted, self.mounted_magic, self.mounted_parts]

        self.ansible_workdir = None
        # No slash (it is also a file name) and no $NAME (Ansible's path options expand environment variables):
        # a shell that ran it would leave lw-pwned in its working directory (see payload_ran()).
        self.payload = "; $(touch lw-pwned) `touch lw-pwned` '\"\n"
        links = os.path.join(lw_workdir, "by-id")
        os.makedirs(links)
        self.link_blank = self._link(links, "lw-blank", self.blank.path)
        self.link_target = self._link(links, "lw-target", self.target.path)
        self.link_magic = self._link(links, "lw-magic", self.magic.path)
        self.link_weird = self._link(links, "lw disk" + self.payload, self.blank.path)
        self.link_file = self._link(links, "lw-to-an-image-file", self.blank.image)
        self.link_dangling = self._link(links, "lw-dangling", "/dev/lw-no-such-disk")
        self.link_dir = self._link(links, "lw-to-a-dir", lw_workdir)
        self.missing = "/dev/lw-no-such-disk"
        self.weird_missing = "/dev/lw disk" + self.payload
        self.relative = os.path.relpath(self.blank.path, "/")  # dev/loopN
        self.a_file = os.path.join(lw_workdir, "a-file")
        with open(self.a_file, "w", encoding="utf-8") as fh:
            fh.write("not a directory\n")
        # A root with spaces and metacharacters that exists: legitimate.
        self.weird_root = os.path.join(lw_workdir, "root with spaces" + self.payload.replace("\n", ""))
        self.newline_root = os.path.join(lw_workdir, "root with a\nnewline")
        for root in (self.weird_root, self.newline_root):
            os.makedirs(os.path.join(root, "run"))
            make_image(root)
        os.makedirs(os.path.join(self.weird_root, "mnt", "lightwhale-data", "lightwhale-state"))
        self.roots = [self.root, self.weird_root, self.newline_root]
        for root in self.roots:
            # The (empty) lock file a real run takes: made before the batch, so that the tree check sees anything
            # else. (A run refused after it took the lock leaves this file; it holds no data.)
            os.makedirs(os.path.join(root, "run", "lightwhale"), exist_ok=True)
            os.close(os.open(os.path.join(root, "run", "lightwhale", "persistence.lock"), os.O_CREAT | os.O_WRONLY,
                             0o600))

    def _mounted_ext4(self, loopdev, name, mnt, header=False):
        disk = loopdev("64M", name=name) if loopdev else name
        run(["mkfs.ext4", "-q", "-F", str(disk)])
        if header:
            write_header(disk)
        target = os.path.join(self.dir, mnt)
        os.makedirs(target)
        run(["mount", "-o", "ro", str(disk), target])
        self.mounts.append(target)
        return disk

    @staticmethod
    def _link(directory, name, target):
        path = os.path.join(directory, name)
        os.symlink(target, path)
        return path

    def device_cases(self, module, base, states):
        """The bad (and the legitimately odd) device paths, for a module that takes `devices`."""
        out = []
        for state in states:
            args = dict(base, **({"state": state} if state else {}))
            tag = f" (state={state})" if state else ""

            def bad(why, devices, *needles, **kw):
                out.append(Case(module, why + tag, ("devices",), dict(args, devices=devices), needles=needles, **kw))

            bad("a device that does not exist", [self.missing], self.missing, "does not exist")
            bad("a relative device path", [self.relative], self.relative, "absolute")
            bad("an empty device path", [""], "absolute")
            bad("a symlink to a regular file", [self.link_file], self.link_file, "not a block device")
            bad("a dangling symlink", [self.link_dangling], self.link_dangling, "does not exist")
            bad("a symlink to a directory", [self.link_dir], self.link_dir, "not a block device")
            bad("a partition of a loop disk", [self.parted.part(1)], self.parted.part(1), "partition")
            bad("a path with spaces and shell metacharacters", [self.weird_missing], "/dev/lw disk", "does not exist")
            bad("a good disk next to a missing one", [self.blank.path, self.missing], self.missing, "does not exist")
        return out

    def root_cases(self, module, base, check=False):
        out = []

        def bad(why, root, *needles):
            out.append(Case(module, why, ("root",), dict(base, root=root), needles=needles, check=check))

        bad("a root that does not exist", "/lw-no-such-root", "/lw-no-such-root", ("does not exist", "no such"))
        bad("a relative root", "relative/root", "relative/root", ("absolute", "does not exist"))
        bad("a root that is a regular file", self.a_file, self.a_file, ("not a directory", "does not exist"))
        bad("a missing root with spaces and shell metacharacters", "/lw root" + self.payload, "/lw root",
            ("does not exist", "no such"))
        return out


def cases_for(module, w):
    """Every case of one module."""
    spec = argument_spec(module)
    blank = [w.blank.path]
    out = []
    if module == "magic_disk":
        # A harmless valid call: remove the header from a disk that has none.
        base = dict(devices=blank, state="absent", root=w.root, kernel_cmdline="quiet")
        out += w.device_cases(module, base, ["present", "absent", "partitioned"])
        for state in ("present", "absent", "partitioned"):
            ro = w.ro_blank if state == "present" else w.ro  # present on a disk with the header has nothing to do
            out.append(Case(module, f"a read-only loop device (state={state})", ("devices",),
                            dict(base, devices=[ro.path], state=state), needles=(ro.path, "read-only")))
            mounted = w.mounted if state == "present" else w.mounted_magic
            out.append(Case(module, f"a mounted device (state={state})", ("devices",),
                            dict(base, devices=[mounted.path], state=state),
                            needles=(mounted.path, ("mounted", "in use"))))
        out.append(Case(module, "a mounted device, force=true", ("devices", "force"),
                        dict(base, devices=[w.mounted.path], state="present", force=True),
                        needles=(w.mounted.path, ("mounted", "in use"))))
        for state in ("present", "absent"):
            out.append(Case(module, f"an empty device list (state={state}: never guessed)", ("devices",),
                            dict(base, devices=[], state=state), needles=("devices",)))
        out.append(Case(module, "a symlink to a real disk (/dev/disk/by-id style) is legitimate", ("devices",),
                        dict(base, devices=[w.link_target], state="present"), expect="ok", writes=("target",)))
        out.append(Case(module, "a symlink with spaces and metacharacters to a real disk (check mode)",
                        ("devices",), dict(base, devices=[w.link_weird], state="present"), expect="ok", check=True))
        out.append(Case(module, "swap_size that is not a size", ("swap_size",),
                        dict(base, state="partitioned", devices=[w.magic.path], swap_size="lots"),
                        needles=("swap_size", "lots")))
        out.append(Case(module, "swap_size below 1 MiB", ("swap_size",),
                        dict(base, state="partitioned", devices=[w.magic.path], swap_size="512K"),
                        needles=("swap_size", "512K")))
        out.append(Case(module, "a negative swap_size", ("swap_size",),
                        dict(base, state="partitioned", devices=[w.magic.path], swap_size="-5M"),
                        needles=("swap_size", "-5M")))
        out.append(Case(module, "kernel_cmdline with shell metacharacters", ("kernel_cmdline",),
                        dict(base, kernel_cmdline="quiet" + w.payload), expect="ok"))
        out += w.root_cases(module, base)
    elif module == "lw_datafs":
        # Valid and harmless: nothing magic among the candidates, so nothing to create.
        base = dict(devices=blank, state="present", root=w.root, kernel_cmdline="quiet", swap=False)
        out += w.device_cases(module, base, ["present"])
        out.append(Case(module, "magic partitions on a read-only disk", ("devices",),
                        dict(base, devices=[w.ro_parts.path]), needles=(w.ro_parts.path, "read-only")))
        out.append(Case(module, "magic partitions, the data partition mounted", ("devices",),
                        dict(base, devices=[w.mounted_parts.path]),
                        needles=(w.mounted_parts.part(2), ("mounted", "in use", "holds ext4"))))
        out.append(Case(module, "a symlink to a real magic disk is legitimate (check mode)", ("devices",),
                        dict(base, devices=[w.link_magic]), expect="ok", check=True))
        out.append(Case(module, "mount_options naming the subvolume", ("mount_options",),
                        dict(base, mount_options=["subvol=/other"]), needles=("subvol=/other", "not allowed")))
        out.append(Case(module, "an empty mount option", ("mount_options",), dict(base, mount_options=[""]),
                        needles=("mount_options",)))
        out.append(Case(module, "a mount option with shell metacharacters (check mode)", ("mount_options",),
                        dict(base, mount_options=["noatime" + w.payload]), expect="clean", check=True))
        out.append(Case(module, "an empty mount_options list is the default", ("mount_options",),
                        dict(base, mount_options=[]), expect="ok"))
        out += w.root_cases(module, base)
    elif module == "lw_overlay":
        base = dict(paths=["/etc"], root=w.root, state="mounted")
        for why, paths, needles in (
                ("a relative overlay path", ["etc"], ("etc", "absolute")),
                ("an empty overlay path", [""], ("''", "absolute")),
                ("an overlay path with a comma", ["/etc,x"], ("/etc,x", ("comma", "does not exist"))),
                ("an overlay path with a colon", ["/etc:x"], ("/etc:x", ("colon", "does not exist"))),
                ("an overlay path with a newline", ["/etc\nx"], ("/etc\nx", ("control character", "does not exist"))),
                ("an overlay path that does not exist", ["/no such dir"], ("/no such dir",)),
                ("an overlay path with shell metacharacters", ["/etc" + w.payload.replace("\n", "")],
                 ("/etc;",)),
                ("the root itself as an overlay path", ["/"], ("/",))):
            out.append(Case(module, why, ("paths",), dict(base, paths=paths), needles=needles))
        out.append(Case(module, "an empty paths list: nothing to mount", ("paths",), dict(base, paths=[]),
                        expect="ok"))
        out.append(Case(module, "a root with a newline in its name", ("root",), dict(base, root=w.newline_root),
                        needles=("control character",)))
        for option in ("lower_base", "upper_base", "work_base"):
            out.append(Case(module, f"a relative {option}", (option,), dict(base, **{option: "run/x"}),
                            needles=("run/x", "absolute")))
            out.append(Case(module, f"a {option} with a colon", (option,), dict(base, **{option: "/run/a:b"}),
                            needles=("/run/a:b", "colon")))
        out.append(Case(module, "upper_base equal to work_base", ("upper_base", "work_base"),
                        dict(base, upper_base="/run/same", work_base="/run/same"), needles=("/run/same",)))
        out.append(Case(module, "a root with spaces and shell metacharacters is legitimate (check mode)", ("root",),
                        dict(base, root=w.weird_root), expect="ok", check=True))
        out += w.root_cases(module, base)
    elif module == "docker_data_root":
        base = dict(root=w.root)
        out.append(Case(module, "a relative data_root", ("data_root",), dict(base, data_root="var/lib/docker"),
                        needles=("var/lib/docker", "absolute")))
        out.append(Case(module, "an empty data_root", ("data_root",), dict(base, data_root=""), needles=("data_root",)))
        out.append(Case(module, "a data_root with a newline", ("data_root",), dict(base, data_root="/var/lib/d\nx"),
                        needles=("data_root", "control character")))
        out.append(Case(module, "a relative config", ("config",), dict(base, config="etc/docker/daemon.json"),
                        needles=("etc/docker/daemon.json", "absolute")))
        out.append(Case(module, "a config that is a directory", ("config",), dict(base, config="/etc"),
                        needles=("/etc",)))
        out.append(Case(module, "a data_root that is a regular file in the image", ("data_root",),
                        dict(base, data_root="/etc/hostname"), needles=("/etc/hostname", "not a directory")))
        out.append(Case(module, "a root with spaces and shell metacharacters is legitimate (check mode)", ("root",),
                        dict(base, root=w.weird_root), expect="ok", check=True))
        out += w.root_cases(module, base)
    elif module == "lw_status":
        base = dict(root=w.root, mode="volatile", failure="a test")
        out.append(Case(module, "values with shell metacharacters are text (check mode)",
                        ("failure", "label", "uuid", "devices", "missing", "warnings"),
                        dict(base, failure=w.payload, label=w.payload, uuid=w.payload, devices=[w.payload],
                             missing=[w.payload], warnings=[w.payload]), expect="ok", check=True))
        out.append(Case(module, "empty lists (check mode)", ("devices", "missing", "swap_devices", "overlays",
                                                             "warnings"),
                        dict(base, devices=[], missing=[], swap_devices=[], overlays=[], warnings=[]),
                        expect="ok", check=True))
        out.append(Case(module, "a relative overlay path", ("overlays",), dict(base, overlays=["etc"]),
                        needles=("etc", "absolute")))
        out.append(Case(module, "a relative docker_data_root is only text in the report (check mode)",
                        ("docker_data_root",), dict(base, docker_data_root="var/lib/docker"), expect="clean",
                        check=True))
        out.append(Case(module, "a root with spaces and shell metacharacters is legitimate (check mode)", ("root",),
                        dict(base, root=w.weird_root), expect="ok", check=True))
        out += w.root_cases(module, base)
    elif module == "persistence_info":
        base = dict(devices=blank, root=w.root)
        out += w.device_cases(module, base, [None])
        out.append(Case(module, "a symlink to a real disk is legitimate", ("devices",),
                        dict(base, devices=[w.link_blank]), expect="ok"))
        out.append(Case(module, "a symlink with spaces and metacharacters to a real disk", ("devices",),
                        dict(base, devices=[w.link_weird]), expect="ok"))
        out.append(Case(module, "a read-only and a mounted disk are only reported", ("devices",),
                        dict(base, devices=[w.ro.path, w.mounted.path]), expect="ok"))
        out.append(Case(module, "a relative overlay path", ("overlays",), dict(base, overlays=["etc"]),
                        needles=("etc", "absolute")))
        out.append(Case(module, "an empty overlays list", ("overlays",), dict(base, overlays=[]), expect="ok"))
        out += w.root_cases(module, base)
    elif module == "lw_snapshot":
        # The sandbox root has no data filesystem: a valid call is refused as volatile, after the options are checked.
        base = dict(root=w.root, name="good", state="present")
        out.append(Case(module, "a valid call on a volatile host (no state to snapshot)", ("name",), dict(base),
                        needles=("volatile", "no state")))
        for why, name, needles in (
                ("a name with a slash", "a/b", ("a/b", "must not contain /")),
                ("a name that climbs", "..", ("..", "must not start with .")),
                ("a hidden name", ".meta", (".meta", "must not start with .")),
                ("an empty name", "", ("must not be empty",)),
                ("a name of 101 characters", "x" * 101, ("at most 100",)),
                ("a name with shell metacharacters", "x" + w.payload, ("only letters",))):
            for state in ("present", "absent", "rolled_back"):
                out.append(Case(module, f"{why} (state={state})", ("name",), dict(base, name=name, state=state),
                                needles=needles))
        for state in ("absent", "rolled_back"):
            out.append(Case(module, f"no name (state={state}: never guessed)", ("name", "state"),
                            dict(base, name=None, state=state), needles=("needs name",)))
        out.append(Case(module, "a description with shell metacharacters is text (check mode)", ("description",),
                        dict(base, description=w.payload), expect="clean", check=True))
        for age in ("lots", "-1d", "1y"):
            out.append(Case(module, f"min_age {age!r}", ("min_age",), dict(base, state="pruned", min_age=age),
                            needles=("min_age", age)))
        out.append(Case(module, "reset=all without the filesystem's UUID", ("reset", "confirm_uuid"),
                        dict(base, state="reset", reset="all"), needles=("confirm_uuid",)))
        out.append(Case(module, "reset=all with a wrong UUID on a volatile host", ("confirm_uuid",),
                        dict(base, state="reset", reset="all", confirm_uuid="00000000-0000-0000-0000-000000000000"),
                        needles=("volatile", "no state")))
        out += w.root_cases(module, base)
    # Every option: a value of the wrong type; timeouts also negative.
    for option, ospec in sorted(spec.items()):
        value, needles = wrong_type_value(ospec)
        # on the module's valid, harmless call (`base` of its branch above)
        case = Case(module, f"{option}: a value of the wrong type ({json.dumps(value)})", (option,),
                    dict(base, **{option: value}), needles=(option,) + needles if needles else ())
        if not needles:
            case.expect, case.check = "clean", True
        out.append(case)
        if ospec.get("type") == "int":
            out.append(Case(module, f"{option}: negative", (option,), dict(base, **{option: -1}),
                            needles=(option, "negative")))
    return out


# ------------------------------------------------------------------------------------------ checks

def file_tree(top):
    """Kinds, modes, owners and content hashes of everything under top (not crossing mounts)."""
    snap = {}
    top_dev = os.lstat(top).st_dev
    for dirpath, dirnames, filenames in os.walk(top):
        dirnames[:] = [d for d in dirnames if os.lstat(os.path.join(dirpath, d)).st_dev == top_dev]
        for name in ["."] + dirnames + filenames:
            path = os.path.normpath(os.path.join(dirpath, name))
            info = os.lstat(path)
            what = None
            if stat.S_ISLNK(info.st_mode):
                what = os.readlink(path)
            elif stat.S_ISREG(info.st_mode):
                with open(path, "rb") as fh:
                    what = hashlib.sha256(fh.read()).hexdigest()
            snap[os.path.relpath(path, top)] = (stat.S_IFMT(info.st_mode), stat.S_IMODE(info.st_mode),
                                                info.st_uid, info.st_gid, what)
    return snap


def traceback_in(result):
    """Why the result looks like a crash rather than a refusal, or None.

    ansible-core 2.19 puts `exception: "(traceback unavailable)"` on every failed result (tracebacks are off by
    default), refusals included; a module that crashed says "Module failed: ..." (or, before 2.19, "MODULE FAILURE"
    with module_stderr) and, with tracebacks on, a real traceback."""
    msg = str(result.get("msg", ""))
    if result.get("exception") not in (None, "(traceback unavailable)"):
        return "result has an exception: " + str(result["exception"])[-300:]
    for key in ("module_stderr", "module_stdout"):
        if result.get(key):
            return f"result has {key}"
    text = json.dumps(result)
    for word in ("Module failed", "MODULE FAILURE", "Traceback (most recent call last)", "NoneType",
                 "KeyError", "AttributeError", "TypeError", "IndexError", "UnboundLocalError"):
        if word in text or word in msg:
            return f"result mentions {word!r}"
    return None


def verdict(case, record, written, pwned, allowed=()):
    """The problems of one case (empty: it passed)."""
    problems = []
    if record is None:
        return ["no task result"]
    result = record.get("result") or {}
    failed = record.get("event") == "failed" or bool(result.get("failed"))
    msg = str(result.get("msg", ""))
    crash = traceback_in(result)
    if crash:
        problems.append(crash)
    if case.expect == "fail" and not failed:
        problems.append("accepted, expected a refusal")
    if case.expect == "ok" and failed:
        problems.append("refused, expected success")
    if failed:
        if not msg.strip():
            problems.append("refused without a message")
        text = msg.lower()
        for needle in case.needles:
            options = needle if isinstance(needle, tuple) else (needle,)
            if not any(str(n).lower() in text for n in options):
                problems.append(f"message does not name {' or '.join(map(repr, options))}")
    unexpected = [name for name in written if name not in allowed]
    if unexpected:
        problems.append(f"wrote {', '.join(unexpected)}")
    if pwned:
        problems.append(f"a shell payload ran: {pwned}")
    return problems


def payload_ran(ansible, w):
    """Where a shell would have run `touch lw-pwned`: the working directories of the run and its modules."""
    places = [ansible.workdir, w.dir, w.root, w.weird_root, "/", os.path.expanduser("~")]
    for place in places:
        for dirpath, _dirs, files in os.walk(place) if place not in ("/", os.path.expanduser("~")) else [(place, [], os.listdir(place))]:
            if "lw-pwned" in files:
                return os.path.join(dirpath, "lw-pwned")
    return None


def task_yaml(index, case):
    lines = [f"    - name: case-{index:03d}",
             f"      {case.module}: {json.dumps(case.args)}",
             "      ignore_errors: true"]
    if case.check:
        lines.append("      check_mode: true")
    return "\n".join(lines)


def run_batch(ansible, w, cases):
    """One playbook for all cases. Returns the per-case problems (a case that writes legitimately is alone in its
    batch's diff: only the named disk may change)."""
    play = ["- hosts: localhost", "  connection: local", "  gather_facts: false", "  collections:",
            "    - lightwhale.persistence", "  tasks:"]
    fq = [Case(**{**c.__dict__, "module": "lightwhale.persistence." + c.module}) for c in cases]
    play += [task_yaml(i, c) for i, c in enumerate(fq)]
    disks_before = {d.name: sha256_of(d) for d in w.disks}
    trees_before = {r: file_tree(r) for r in w.roots}
    res = ansible.run_playbook("\n".join(play) + "\n")
    records = {r.get("task"): r for r in res.results if str(r.get("task", "")).startswith("case-")}
    written = [d.name for d in w.disks if sha256_of(d) != disks_before[d.name]]
    tree_changes = []
    for root, before in trees_before.items():
        after = file_tree(root)
        tree_changes += [p for p in sorted(set(before) | set(after)) if before.get(p) != after.get(p)]
    if tree_changes:
        written.append("sandbox tree " + ", ".join(tree_changes[:10]))
    pwned = payload_ran(ansible, w)
    # A disk a legitimate case of the batch writes is checked by the test itself; any other write counts
    # against every case of the batch.
    allowed = {name for case in cases for name in case.writes}
    report = []
    for index, case in enumerate(cases):
        record = records.get(f"case-{index:03d}")
        case.result = (record or {}).get("result") or {}
        report.append((case, verdict(case, record, written, pwned, allowed)))
    assert len(records) == len(cases), f"{len(records)} results for {len(cases)} cases\n" + res.explain()
    return report


def check_report(report):
    dump = os.environ.get("LW_BAD_INPUT_DUMP")  # a file to write every case's full result to (debugging)
    if dump:
        with open(dump, "a", encoding="utf-8") as out:
            for case, problems in report:
                out.write(json.dumps({"case": case.title, "args": case.args, "problems": problems,
                                      "result": case.result}, default=str) + "\n")
    passed = sum(1 for _case, problems in report if not problems)
    figures.add(*FIGURE, value=passed, total=len(report), unit="cases")
    bad = [f"- {case.title}: {'; '.join(problems)}\n    args={case.args!r}\n    result={_brief(case.result)}"
           for case, problems in report if problems]
    assert not bad, f"{len(bad)} of {len(report)} cases failed:\n" + "\n".join(bad)


def _brief(result):
    keep = {k: result[k] for k in ("failed", "changed", "msg", "exception", "module_stderr") if k in result}
    return json.dumps(keep)[:600]


# ------------------------------------------------------------------------------------------ tests

def test_the_table_covers_every_option(tmp_path):
    """Every option of every module has at least one case, wrong types included (a new option fails this)."""

    class FakeDisk(str):
        path = "/dev/fake"

        def part(self, number):
            return f"/dev/fakep{number}"

    class Fake:
        """Enough of World to build the table without disks: every attribute is a fake disk (a str)."""

        def __getattr__(self, name):
            return FakeDisk(f"/dev/fake-{name}")

    fake = Fake()
    fake.payload = "; $(true)\n"
    fake.root = fake.weird_root = str(tmp_path)
    fake.device_cases = lambda module, base, states: World.device_cases(fake, module, base, states)
    fake.root_cases = lambda module, base, check=False: World.root_cases(fake, module, base, check)
    missing = []
    for module in MODULES:
        spec = argument_spec(module)
        assert spec, module
        covered = {opt for case in cases_for(module, fake) for opt in case.options}
        missing += [f"{module}.{opt}" for opt in spec if opt not in covered]
        wrong = {case.options[0] for case in cases_for(module, fake) if "wrong type" in case.why}
        missing += [f"{module}.{opt} (wrong type)" for opt in spec if opt not in wrong]
    assert not missing, "options without a bad-input case: " + ", ".join(missing)


@pytest.mark.parametrize("module", MODULES)
def test_bad_input_is_refused_cleanly(ansible, loopdev, lw_workdir, sandbox_root, module):
    w = World(loopdev, lw_workdir, sandbox_root)
    cases = cases_for(module, w)
    try:
        report = run_batch(ansible, w, cases)
    finally:
        for target in w.mounts:
            run(["umount", target], check=False)
    # The legitimate write: the header (and its newline) on the disk reached through a by-id style symlink.
    for case, problems in report:
        if "target" in case.writes and not problems:
            head = read_bytes(w.target, 0, 4096)
            if head != MAGIC + b"\n" + bytes(4096 - len(MAGIC) - 1):
                problems.append(f"the disk behind the symlink holds {head[:40]!r}..., not just the header")
    check_report(report)
