"""pytest plugin for the testinfra verifiers of the VM scenarios (loaded with PYTEST_PLUGINS=lwvm_plugin,
PYTHONPATH pointing here; see each scenario's molecule.yml).

Fixture ``lw``: the testinfra ``host`` of the VM under test plus what the harness knows about it - its molecule
platform (``disks``, ``flavour``), its VM directory on this machine (console log), the expectations the
side-effect playbooks recorded (``expected``) - and the checks every scenario shares. The tests of the steps that
scenarios single and sysvinit share are in lwvm_steps (imported by their test modules).
"""

from __future__ import annotations

import json
import os
import re

import pytest
import yaml

STATE = "/mnt/lightwhale-data/lightwhale-state"
DATA = "/mnt/lightwhale-data"
STATUS = "/run/lightwhale/persistence.json"
OVERLAYS = ("/etc", "/var", "/home")
SUBVOLUMES = ("@lightwhale-data", "@lightwhale-state", "@lightwhale-state-snapshots")
DOCKER_ROOT = STATE + "/docker"
MAGIC = b"lightwhale-please-format-me"
# RAID1 over all of a VM's disks: the metadata profile by the number of disks.
RAID1_METADATA = {2: "raid1", 3: "raid1c3"}

# The shared tests are imported by the test modules, after this plugin is loaded: their asserts are rewritten too.
pytest.register_assert_rewrite("lwvm_steps")


def _load_yaml(path):
    with open(path, encoding="utf-8") as handle:
        return yaml.safe_load(handle)


class LwHost:
    """One test VM, seen through testinfra and the harness's files."""

    def __init__(self, host):
        self.host = host
        self.name = host.backend.get_hostname()
        molecule = _load_yaml(os.environ["MOLECULE_FILE"])
        self.platform = next(p for p in molecule["platforms"] if p["name"] == self.name)
        instances = _load_yaml(os.environ["MOLECULE_INSTANCE_CONFIG"]) or []
        self.instance = next((i for i in instances if i["instance"] == self.name), {})
        self.ephemeral = os.environ["MOLECULE_EPHEMERAL_DIRECTORY"]

    # --- reading the guest -------------------------------------------------------------------------------------
    def run(self, command):
        return self.host.check_output(command)

    def status(self):
        return json.loads(self.run("cat %s" % STATUS))

    def mount(self, target):
        """The mount at exactly TARGET as findmnt reports it (dict), or None."""
        out = self.host.run("findmnt -J -o TARGET,SOURCE,FSTYPE,OPTIONS -M %s" % target)
        if out.rc != 0 or not out.stdout.strip():
            return None
        return json.loads(out.stdout)["filesystems"][0]

    def sha256(self, path):
        return self.run("sha256sum %s" % path).split()[0]

    def profiles(self):
        """{'data': 'single', 'metadata': 'dup', 'system': 'dup'} from btrfs filesystem df (lower case)."""
        found = {}
        for line in self.run("btrfs filesystem df %s" % DATA).splitlines():
            match = re.match(r"^(Data|Metadata|System), (\w+):", line)
            if match:
                found.setdefault(match.group(1).lower(), set()).add(match.group(2).lower())
        return {kind: ",".join(sorted(profiles)) for kind, profiles in found.items()}

    def subvolumes(self):
        out = self.run("btrfs subvolume list -a %s" % DATA)
        return sorted(line.split(" path ", 1)[1].replace("<FS_TREE>/", "") for line in out.splitlines())

    def swaps(self):
        return [line.split()[0] for line in self.run("cat /proc/swaps").splitlines()[1:]]

    def disk(self, serial):
        return "/dev/disk/by-id/virtio-%s" % serial

    def serials(self):
        """The serials of this VM's disks, lwd1 to lwd<disks>."""
        return ["lwd%d" % index for index in range(1, int(self.platform["disks"]) + 1)]

    def raid1_metadata(self):
        """The metadata profile of RAID1 over all this VM's disks: raid1 on 2 disks, raid1c3 on 3."""
        return RAID1_METADATA[int(self.platform["disks"])]

    def partitions(self, serial):
        table = json.loads(self.run("sfdisk -J %s" % self.disk(serial)))["partitiontable"]
        return table["label"], [p.get("name") for p in table.get("partitions", [])]

    def head(self, serial, size=512):
        return bytes.fromhex(self.run("head -c %d %s | od -An -v -tx1 | tr -d ' \\n'" % (size, self.disk(serial))))

    def console(self):
        """This VM's serial console, every boot of it (the host-side log QEMU writes)."""
        path = os.path.join(self.instance["dir"], "console.log")
        with open(path, encoding="utf-8", errors="replace") as handle:
            return handle.read()

    def boot_log(self):
        """What the boot hook logged: the journal under systemd, the console under SysV init."""
        if self.platform.get("flavour", "systemd") == "systemd":
            return self.run("journalctl -b --no-pager -o cat -t lightwhale-persistence")
        return self.console()

    def expected(self):
        """What a side-effect playbook recorded for this VM (lw-expected-<name>.json in the ephemeral dir)."""
        path = os.path.join(self.ephemeral, "lw-expected-%s.json" % self.name)
        with open(path, encoding="utf-8") as handle:
            return json.load(handle)

    # --- shared checks -----------------------------------------------------------------------------------------
    def check_read_only_image(self):
        root = self.mount("/")
        assert root["fstype"] == "ext4" and "ro" in root["options"].split(","), root
        for path in ("/run", "/tmp"):
            assert self.mount(path)["fstype"] == "tmpfs", path

    def check_hook_ran_at_boot(self):
        """The boot hook ran in this boot, from the init system."""
        if self.platform.get("flavour", "systemd") == "systemd":
            assert self.host.service("lightwhale-persistence").is_valid
            out = self.run("systemctl show -p ActiveState -p Result lightwhale-persistence")
            state = dict(line.partition("=")[::2] for line in out.splitlines())
            assert state == {"ActiveState": "active", "Result": "success"}, state
        else:
            assert self.run("readlink /etc/rcS.d/S11persistence").endswith("S11persistence")
            assert self.run("cat /proc/1/comm") == "init"
        boot_seconds = float(self.run("cut -d' ' -f1 /proc/uptime"))
        age = float(self.run("echo $(( $(date +%s) - $(stat -c %Y " + STATUS + ") ))"))
        assert age <= boot_seconds + 1, "status file older than this boot"
        # The wrapper records which hook ran it; `status` shows it under the summary line.
        caller = ("lightwhale-persistence.service" if self.platform.get("flavour", "systemd") == "systemd"
                  else "S11persistence")
        hook = self.run("cat /run/lightwhale/boot-hook")
        assert hook.startswith("lightwhale-persistence: run from %s, lightwhale.persistence " % caller), hook
        assert hook in self.host.run("lightwhale-persistence-boot status").stdout, hook

    def check_overlays(self, upper_base):
        for path in OVERLAYS:
            mnt = self.mount(path)
            assert mnt and mnt["fstype"] == "overlay", (path, mnt)
            options = dict(o.partition("=")[::2] for o in mnt["options"].split(","))
            assert options["upperdir"] == "%s/overlay/upper%s" % (upper_base, path), options
            assert options["workdir"] == "%s/overlay/work%s" % (upper_base, path), options
            assert options["lowerdir"] == "/run/lightwhale/overlay/lower%s" % path, options
        probe = "/etc/.lw-writable-%s" % os.getpid()
        self.run("touch %s && rm %s" % (probe, probe))

    def check_volatile(self):
        self.check_read_only_image()
        self.check_hook_ran_at_boot()
        data = self.mount(DATA)
        assert data["fstype"] == "tmpfs", data
        assert self.host.file(STATE).is_directory
        self.check_overlays(STATE)
        status = self.status()
        assert status["mode"] == "volatile" and status["ok"] is True, status
        assert not self.swaps()

    def check_persistent(self, serials, data_profile, metadata_profile, mode="persistent", total=None):
        """The layout of docs/boot-sequence.md on the disks SERIALS, mounted, with swap and overlays. TOTAL: the number
        of members the filesystem has (default: one per disk); profiles given as None are not compared."""
        self.check_read_only_image()
        self.check_hook_ran_at_boot()
        status = self.status()
        assert status["mode"] == mode, status
        assert status["ok"] is True, status
        assert status["label"] == "lightwhale-data"
        for serial in serials:
            label, names = self.partitions(serial)
            assert label == "gpt"
            assert names == ["lightwhale-swap", "lightwhale-data"], names
            assert not self.head(serial, 64).startswith(MAGIC), "magic header still on %s" % serial
        data = self.mount(DATA)
        state = self.mount(STATE)
        assert data["fstype"] == "btrfs" and "subvol=/@lightwhale-data" in data["options"], data
        assert state["fstype"] == "btrfs" and "subvol=/@lightwhale-state" in state["options"], state
        members = self.run("btrfs filesystem show %s" % DATA)
        assert "Total devices %d" % (total or len(serials)) in members, members
        assert self.run("blkid -o value -s LABEL %s" % data["source"].split("[")[0]) == "lightwhale-data"
        profiles = self.profiles()
        assert data_profile is None or profiles["data"] == data_profile, profiles
        assert metadata_profile is None or profiles["metadata"] == metadata_profile, profiles
        assert all(s in self.subvolumes() for s in SUBVOLUMES), self.subvolumes()
        swaps = self.swaps()
        assert len(swaps) == len(serials), swaps
        for swap in swaps:
            assert self.run("blkid -o value -s LABEL %s" % swap) == "lightwhale-swap"
        self.check_overlays(STATE)
        daemon = json.loads(self.run("cat /etc/docker/daemon.json"))
        assert daemon["data-root"] == DOCKER_ROOT, daemon
        return status

    def check_files(self):
        """Every file a side effect recorded has the same bytes, owner and mode now."""
        recorded = self.expected()["files"]
        assert recorded
        for path, want in recorded.items():
            got = self.host.file(path)
            assert got.exists, path
            assert self.sha256(path) == want["sha256"], path
            assert "%04o" % got.mode == want["mode"], (path, "%04o" % got.mode)
            assert got.user == want["owner"], (path, got.user)

    def check_hand_run_changes_nothing(self):
        """The boot playbook run again by hand (through the boot hook's wrapper) changes nothing."""
        result = self.host.run("lightwhale-persistence-boot start")
        log = self.run("cat /run/lightwhale/ansible/last-run.log")
        assert result.rc == 0, log
        recap = re.search(r"localhost\s+: ok=\d+\s+changed=(\d+)\s+unreachable=0\s+failed=0", log)
        assert recap, log
        assert recap.group(1) == "0", log


@pytest.fixture
def lw(host):
    return LwHost(host)
