"""Helpers for the persistence_info and enable tests: sandboxes in each mode, 'nothing changed' snapshots,
and runs of the enable playbook against localhost with a sandbox root.

- Sandbox(ansible, root)         modules run with root=<sandbox> (and kernel_cmdline='quiet' where they take it)
    .module(name, **args)        one module run (RunResult)
    .boot(disks)                 boot steps 2-6 on the listed disks: magic_disk partitioned, lw_datafs mounted
    .overlays()                  the sample image and lw_overlay over /etc, /var, /home
    .info(devices, check=False)  persistence_info
    .enable(variables, check)    ansible-playbook lightwhale.persistence.enable against localhost (local connection)
- Snapshot(root, disks)          disk contents, the whole mount table, our disks' swap areas, the root's tree; ==
- summary_lines(res)             the enable role's per-host summary lines of a playbook run
- forget_and_detach(disk)        what an unplugged disk does to the kernel's view (no partitions, no btrfs device)
"""

from __future__ import annotations

import os
import re

from .disk import sha256_of
from .overlay import make_image, tree
from .sysutil import read_mountinfo, read_swaps, run

TAKES_CMDLINE = ("magic_disk", "lw_datafs")
ENABLE_PLAYBOOK = "- name: The collection's enable playbook\n  ansible.builtin.import_playbook: lightwhale.persistence.enable\n"


class Sandbox:
    def __init__(self, ansible, root):
        self.ansible = ansible
        self.root = root

    def module(self, name, check=False, diff=False, **args):
        args.setdefault("root", self.root)
        if name in TAKES_CMDLINE:
            args.setdefault("kernel_cmdline", "quiet")
        if "devices" in args:
            args["devices"] = [str(item) for item in args["devices"]]
        return self.ansible.run_module(name, args, check=check, diff=diff)

    def ok(self, name, **args):
        res = self.module(name, **args)
        assert res.rc == 0 and not res.failed, res.explain()
        return res

    def boot(self, disks, swap=True):
        """Boot steps 2-6 on the listed disks, as the boot role runs them on a first boot."""
        self.ok("magic_disk", devices=disks, state="partitioned", swap=swap)
        return self.ok("lw_datafs", devices=disks, state="mounted", swap=swap)

    def overlays(self):
        make_image(self.root)
        return self.ok("lw_overlay")

    def info(self, devices, check=False, **args):
        return self.module("persistence_info", devices=devices, check=check, **args)

    def enable(self, devices, check=False, diff=False, **variables):
        extravars = dict(ansible_connection="local", lightwhale_persistence_root=self.root,
                         lightwhale_persistence_devices=[str(item) for item in devices])
        extravars.update(variables)
        return self.ansible.run_playbook(ENABLE_PLAYBOOK, extravars=extravars, check=check, diff=diff)


class Snapshot:
    """Everything a read-only run must leave as it was."""

    def __init__(self, root, disks):
        names = {os.path.basename(disk.path) for disk in disks}
        # Exact names: loop1 must not take loop17p1, another run's swap (swap is machine-wide).
        self.swaps = sorted(area for area in read_swaps()
                            if any(re.fullmatch(re.escape(name) + r"(p[0-9]+)?", os.path.basename(area))
                                   for name in names))
        # The kernel pages out to an active swap area whenever it likes: past its header page those bytes are its.
        self.disks = {disk.path: sha256_of(disk, skip=swap_slots(disk, self.swaps)) for disk in disks}
        self.mounts = [(m.mount_id, m.majmin, m.root, m.mount_point, m.fstype, m.source) for m in read_mountinfo()]
        self.tree = tree(root)
        self.partitions = {disk.path: disk.partition_nodes() for disk in disks}

    def __eq__(self, other):
        return vars(self) == vars(other)

    def diff(self, other):
        return {key: (value, vars(other)[key]) for key, value in vars(self).items() if vars(other)[key] != value}


def swap_slots(disk, swaps):
    """(start, end) byte ranges of the disk that hold the page slots of its active swap partitions (all but the
    first page, the swap header, which the kernel leaves alone)."""
    slots = []
    for area in swaps:
        part = os.path.basename(area)
        if not re.fullmatch(re.escape(os.path.basename(disk.path)) + r"p?[0-9]+", part):
            continue
        with open(f"/sys/class/block/{part}/start", encoding="ascii") as start, \
                open(f"/sys/class/block/{part}/size", encoding="ascii") as size:
            first, length = int(start.read()) * 512, int(size.read()) * 512
        slots.append((first + 4096, first + length))
    return slots


def summary_lines(res):
    """{host: summary line} from the role's 'Print the summary line' task of a playbook run."""
    lines = {}
    for rec in res.results:
        if rec.get("event") == "ok" and "Print the summary line" in str(rec.get("task", "")):
            lines[rec["host"]] = rec["result"].get("msg")
    return lines


def task_result(res, name_part, host="localhost"):
    """The last result record of the task whose name contains name_part, or None."""
    found = None
    for rec in res.results:
        if name_part in str(rec.get("task", "")) and rec.get("host") == host:
            found = rec
    return found


def forget_and_detach(disk):
    """What an unplugged disk does to the kernel's view: no partitions, no btrfs registration."""
    for node in disk.partition_nodes():
        run(["btrfs", "device", "scan", "--forget", node], check=False)
    run(["partx", "-d", disk.path])
