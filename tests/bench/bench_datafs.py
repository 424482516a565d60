"""Wall times of lw_datafs next to the same work done with plain commands, on loop devices.

    sudo $LW_VENV_OLD/bin/python tests/bench/bench_datafs.py [--runs 5] [--size 512M]

Measured, each --runs times on two fresh sparse loop disks laid out like magic_disk does (GPT: 64 MiB
swap + data), median and min/max printed:

  create-2     first creation on 2 disks and mount (state: mounted): mkswap x2, mkfs.btrfs raid1, 3 subvolumes,
               label, both subvolume mounts, swapon x2
  mount        the everyday boot: the filesystem exists, nothing mounted yet (state: mounted)
  noop         state: mounted when everything is already mounted (changed: false)

each done three ways: through `ansible localhost -m lightwhale.persistence.lw_datafs` (what a playbook
pays), the module alone (python on the module file with an args file: no Ansible controller), and the
equivalent plain commands a shell script would run (no probing beyond blkid, no checks). `ansible -m
ping` gives Ansible's own floor on this machine.

Everything runs in a private mount namespace (the script re-executes itself under unshare) with a
sandbox root in a temp dir; swap, mounts and loops are undone in `finally`, also on failure.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
SWAP_GUID = "0657FD6D-A4AB-43C4-84E5-0933C84B4F4F"
DATA_GUID = "0FC63DAF-8483-4772-8E79-3D69D8477DE4"
C_ENV = dict(os.environ, LC_ALL="C", LANG="C")


def sh(argv, check=True, env=None, stdin=None):
    proc = subprocess.run([str(a) for a in argv], input=stdin, capture_output=True, text=True, env=env or C_ENV,
                          check=False)
    if check and proc.returncode != 0:
        raise RuntimeError(f"{' '.join(map(str, argv))}: rc={proc.returncode}\n{proc.stdout}\n{proc.stderr}")
    return proc


def timed(func):
    start = time.perf_counter()
    func()
    return time.perf_counter() - start


class Bench:
    def __init__(self, size, workdir):
        self.size = size
        self.workdir = workdir
        self.root = os.path.join(workdir, "root")
        self.data = os.path.join(self.root, "mnt/lightwhale-data")
        self.state = os.path.join(self.data, "lightwhale-state")
        os.makedirs(os.path.join(self.root, "run"))
        self.loops = []
        bindir = os.path.dirname(sys.executable)
        self.ansible = os.path.join(bindir, "ansible")
        self.coll = os.path.join(workdir, "collections")
        os.makedirs(os.path.join(self.coll, "ansible_collections", "lightwhale"))
        os.symlink(REPO, os.path.join(self.coll, "ansible_collections", "lightwhale", "persistence"))
        self.env = dict(C_ENV, LC_ALL="C.UTF-8", LANG="C.UTF-8", ANSIBLE_COLLECTIONS_PATH=self.coll, ANSIBLE_HOME=os.path.join(workdir, "ah"),
                        ANSIBLE_LOCAL_TEMP=os.path.join(workdir, "at"), ANSIBLE_REMOTE_TEMP=os.path.join(workdir, "rt"),
                        ANSIBLE_PYTHON_INTERPRETER=sys.executable, ANSIBLE_GATHERING="explicit",
                        ANSIBLE_DEPRECATION_WARNINGS="False", PATH=bindir + os.pathsep + os.environ["PATH"],
                        PYTHONPATH=self.coll)
        self.env.pop("ANSIBLE_CONFIG", None)

    # ------------------------------------------------------------------ disks
    def attach(self, count):
        for index in range(count):
            image = os.path.join(self.workdir, f"disk{index}.img")
            with open(image, "wb") as handle:
                handle.truncate(self.size)
            self.loops.append(sh(["losetup", "-f", "--show", image]).stdout.strip())

    def layout(self):
        """Fresh magic layout (what magic_disk state=partitioned leaves): blank swap and data partitions."""
        for loop in self.loops:
            sh(["wipefs", "-a", "-q", loop], check=False)
            script = (f"label: gpt\nstart=2048, size=131072, type={SWAP_GUID}, name=\"lightwhale-swap\"\n"
                      f"start=133120, type={DATA_GUID}, name=\"lightwhale-data\"\n")
            sh(["sfdisk", "-q", "--wipe", "always", "--wipe-partitions", "always", "--no-reread", "--no-tell-kernel",
                loop], stdin=script)
            sh(["partx", "-u", loop])
        deadline = time.time() + 10
        while not all(os.path.exists(p) for p in self.parts("1") + self.parts("2")):
            if time.time() > deadline:
                raise RuntimeError("partition nodes did not appear")
            time.sleep(0.02)
        for node in self.parts("1") + self.parts("2"):
            sh(["wipefs", "-a", "-q", node])

    def parts(self, number):
        return [f"{loop}p{number}" for loop in self.loops]

    def release(self):
        """swapoff, unmount everything under the root; forget btrfs registrations."""
        swaps = [line.split()[0] for line in open("/proc/swaps").read().splitlines()[1:]]
        for area in swaps:
            if any(os.path.basename(area).startswith(os.path.basename(loop) + "p") for loop in self.loops):
                sh(["swapoff", area], check=False)
        for _attempt in range(4):
            targets = [line.split()[4] for line in open("/proc/self/mountinfo")
                       if line.split()[4].startswith(self.root + "/")]
            if not targets:
                break
            for target in sorted(targets, key=len, reverse=True):
                sh(["umount", target], check=False)

    def teardown(self):
        self.release()
        for loop in self.loops:
            for node in self.parts("1") + self.parts("2"):
                if node.startswith(loop):
                    sh(["btrfs", "device", "scan", "--forget", node], check=False)
            sh(["partx", "-d", loop], check=False)
            sh(["losetup", "-d", loop], check=False)

    # ------------------------------------------------------------------ three ways
    def args(self):
        return dict(devices=self.loops, state="mounted", root=self.root, kernel_cmdline="quiet")

    def via_ansible(self):
        proc = sh([self.ansible, "localhost", "-c", "local", "-i", "localhost,", "-m",
                   "lightwhale.persistence.lw_datafs", "-a", json.dumps(self.args())], env=self.env, check=False)
        if proc.returncode != 0:
            raise RuntimeError(proc.stdout + proc.stderr)

    def via_module(self):
        path = os.path.join(self.workdir, "args.json")
        with open(path, "w") as handle:
            json.dump(dict(ANSIBLE_MODULE_ARGS=self.args()), handle)
        proc = sh([sys.executable, "-m", "ansible_collections.lightwhale.persistence.plugins.modules.lw_datafs", path],
                  env=self.env, check=False)
        result = json.loads(proc.stdout)
        if result.get("failed"):
            raise RuntimeError(proc.stdout)

    def ping(self):
        sh([self.ansible, "localhost", "-c", "local", "-i", "localhost,", "-m", "ansible.builtin.ping"], env=self.env)

    def plain_create(self):
        """The creation as a plain script would do it (boot step 5, then 6)."""
        for node in self.parts("1"):
            sh(["mkswap", "-L", "lightwhale-swap", node])
        sh(["mkfs.btrfs", "-f", "-d", "raid1", "-m", "raid1"] + self.parts("2"))
        top = tempfile.mkdtemp(dir=os.path.join(self.root, "run"))
        sh(["mount", "-o", "subvolid=5", self.parts("2")[0], top])
        for name in ("@lightwhale-data", "@lightwhale-state", "@lightwhale-state-snapshots"):
            sh(["btrfs", "subvolume", "create", os.path.join(top, name)])
        sh(["umount", top])
        os.rmdir(top)
        sh(["btrfs", "filesystem", "label", self.parts("2")[0], "lightwhale-data"])
        self.plain_mount()

    def plain_mount(self):
        """Find by label (probing each partition), register, mount both subvolumes, swap on."""
        found = [node for node in self.parts("2")
                 if "LABEL=lightwhale-data" in sh(["blkid", "-p", "-o", "export", node], check=False).stdout]
        sh(["btrfs", "device", "scan"] + found)
        os.makedirs(self.data, exist_ok=True)
        sh(["mount", "-o", "subvol=/@lightwhale-data", found[0], self.data])
        os.makedirs(self.state, exist_ok=True)
        sh(["mount", "-o", "subvol=/@lightwhale-state", found[0], self.state])
        for node in self.parts("1"):
            sh(["swapon", node])

    def plain_noop(self):
        """What a careful script checks before doing nothing: both mounts and the swap areas."""
        sh(["findmnt", "--mountpoint", self.data])
        sh(["findmnt", "--mountpoint", self.state])
        sh(["cat", "/proc/swaps"])


def measure(bench, runs):
    figures = {}

    def add(name, seconds):
        figures.setdefault(name, []).append(seconds)

    for _run in range(runs):
        add("ansible -m ping (floor)", timed(bench.ping))
        for way, create, mount in (("ansible", bench.via_ansible, bench.via_ansible),
                                   ("module alone", bench.via_module, bench.via_module),
                                   ("plain commands", bench.plain_create, bench.plain_mount)):
            bench.release()
            bench.layout()
            add(f"create-2 / {way}", timed(create))
            noop = {"ansible": bench.via_ansible, "module alone": bench.via_module,
                    "plain commands": bench.plain_noop}[way]
            add(f"noop / {way}", timed(noop))
            bench.release()
            add(f"mount / {way}", timed(mount))
    return figures


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--size", default="512M")
    opts = parser.parse_args()
    if os.geteuid() != 0:
        sys.exit("bench_datafs: needs root (loop devices, mounts)")
    if os.environ.get("LW_BENCH_NS") != "1":
        os.execvpe("unshare", ["unshare", "--mount", "--propagation", "private", sys.executable] + sys.argv,
                   dict(os.environ, LW_BENCH_NS="1"))
    size = int(opts.size[:-1]) << {"M": 20, "G": 30}[opts.size[-1].upper()]
    workdir = tempfile.mkdtemp(prefix="lwbench-")
    bench = Bench(size, workdir)
    try:
        bench.attach(2)
        figures = measure(bench, opts.runs)
    finally:
        bench.teardown()
        shutil.rmtree(workdir, ignore_errors=True)
    print(f"lw_datafs wall times, 2 loop disks of {opts.size}, {opts.runs} runs each "
          f"(median [min-max], seconds); {os.cpu_count()} CPUs")
    for name, values in figures.items():
        print(f"  {name:32s} {statistics.median(values):7.3f}  [{min(values):.3f}-{max(values):.3f}]")


if __name__ == "__main__":
    main()
