"""Wall times of snapshots and rollback on a state of 10,000 files, on a loop disk, with figures printed.

    sudo $LW_VENV_OLD/bin/python tests/bench/bench_snapshot.py [--rounds 5] [--files 10000]

One 2 GiB sparse loop disk carries the magic header; the boot playbook makes it the data filesystem in a sandbox
root. Then --files files of 1 KiB are written through the overlays (/etc 10 %, /var 40 %, /home 20 %) and into
Docker's data root (30 %), and each round measures, median and min printed:

  ping          `ansible localhost -m ansible.builtin.ping`: Ansible's floor for one module run here
  snapshot      `ansible localhost -m lightwhale.persistence.lw_snapshot -a name=...`: a read-only snapshot
  delete        the same module with state=absent: the snapshot deleted, the deletion committed
  request       state=rolled_back: the request for the next boot written
  everyday      a reboot and the boot playbook with nothing due (unmount all, power off, boot)
  rollback      a reboot and the boot playbook that carries out the pending rollback
  boot-snapshot a reboot and the boot playbook with lightwhale_persistence_boot_snapshots=3

The script re-executes itself in a private mount namespace; swap, mounts and the loop device are undone at the end,
also on failure. It asserts nothing about time.
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
VENV = os.environ.get("LW_VENV_OLD") or os.path.dirname(os.path.dirname(sys.executable))
BIN = os.path.join(VENV, "bin")


def sh(argv, check=True, env=None):
    proc = subprocess.run([str(a) for a in argv], capture_output=True, text=True, env=env, check=False)
    if check and proc.returncode != 0:
        raise RuntimeError(f"{' '.join(map(str, argv))}: rc={proc.returncode}\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    return proc


class Bench:
    def __init__(self, workdir, files):
        self.workdir, self.files = workdir, files
        self.root = os.path.join(workdir, "root")
        self.collections = os.path.join(workdir, "collections")
        self.loop = None
        self.env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=self.collections, ANSIBLE_LOCALHOST_WARNING="false",
                        ANSIBLE_INVENTORY_UNPARSED_WARNING="false", LC_ALL="C.UTF-8",
                        ANSIBLE_LOCAL_TEMP=os.path.join(workdir, "tmp"), ANSIBLE_HOME=os.path.join(workdir, "home"))

    def setup(self):
        sh([os.path.join(BIN, "ansible-galaxy"), "collection", "build", "--force", "--output-path", self.workdir, REPO],
           env=self.env)
        tarball = [name for name in os.listdir(self.workdir) if name.endswith(".tar.gz")][0]
        sh([os.path.join(BIN, "ansible-galaxy"), "collection", "install", "--force", "-p", self.collections,
            os.path.join(self.workdir, tarball)], env=self.env)
        image = os.path.join(self.workdir, "disk.img")
        with open(image, "wb") as handle:
            handle.truncate(2 << 30)
        self.loop = sh(["losetup", "--find", "--show", image]).stdout.strip()
        with open(self.loop, "r+b") as handle:
            handle.write(b"lightwhale-please-format-me\n")
        for rel in ("etc", "var/lib", "home/op", "run", "mnt/lightwhale-data"):
            os.makedirs(os.path.join(self.root, rel), exist_ok=True)
        with open(os.path.join(self.root, "etc/hostname"), "w") as handle:
            handle.write("lightwhale\n")

    def boot(self, **variables):
        evars = dict(lightwhale_persistence_root=self.root, lightwhale_persistence_devices=[self.loop],
                     lightwhale_persistence_kernel_cmdline="quiet")
        evars.update(variables)
        start = time.perf_counter()
        sh([os.path.join(BIN, "ansible-playbook"), "lightwhale.persistence.boot", "-e", json.dumps(evars)], env=self.env)
        return time.perf_counter() - start

    def module(self, module_name, **args):
        start = time.perf_counter()
        sh([os.path.join(BIN, "ansible"), "localhost", "-c", "local", "-i", "localhost,", "-e",
            "ansible_python_interpreter=" + sys.executable, "-m", module_name] + (["-a", json.dumps(args)] if args else []),
           env=self.env)
        return time.perf_counter() - start

    def snap(self, **args):
        return self.module("lightwhale.persistence.lw_snapshot", root=self.root, **args)

    def power_off(self):
        for _attempt in range(10):
            lines = [line.split()[4] for line in open("/proc/self/mountinfo")
                     if line.split()[4].startswith(self.root + "/")]
            if not lines:
                break
            for target in sorted(lines, key=len, reverse=True):
                sh(["umount", target], check=False)
        for line in open("/proc/swaps").readlines()[1:]:
            area = line.split()[0]
            if os.path.basename(area).startswith(os.path.basename(self.loop) + "p"):
                sh(["swapoff", "/dev/" + os.path.basename(area)], check=False)
        for node in (self.loop + "p1", self.loop + "p2"):
            if os.path.exists(node):
                sh(["btrfs", "device", "scan", "--forget", node], check=False)
        sh(["partx", "-d", self.loop], check=False)
        shutil.rmtree(os.path.join(self.root, "run", "lightwhale"), ignore_errors=True)

    def reboot(self, **variables):
        self.power_off()
        return self.boot(**variables)

    def fill(self):
        shares = (("etc/lw-bench", 0.1), ("var/lib/lw-bench", 0.4), ("home/op/lw-bench", 0.2),
                  ("mnt/lightwhale-data/lightwhale-state/docker/lw-bench", 0.3))
        payload = os.urandom(1024)
        written = 0
        for rel, share in shares:
            count = int(self.files * share) if rel != shares[-1][0] else self.files - written
            for index in range(count):
                directory = os.path.join(self.root, rel, "d%03d" % (index // 100))
                if index % 100 == 0:
                    os.makedirs(directory, exist_ok=True)
                with open(os.path.join(directory, "f%05d" % index), "wb") as handle:
                    handle.write(payload)
            written += count
        os.sync()
        return written

    def expect(self, key, value):
        """The boot measured did what it is measured for (its status file says so), or the bench stops."""
        with open(os.path.join(self.root, "run/lightwhale/persistence.json")) as handle:
            status = json.load(handle)
        if status.get(key) != value or not status.get("ok"):
            raise RuntimeError("bench: the boot did not do what it is measured for: %s" % status.get("summary"))

    def teardown(self):
        if self.loop:
            self.power_off()
            sh(["losetup", "-d", self.loop], check=False)


def line(label, times):
    print("%-14s median %6.3f s   min %6.3f s   (%d runs)" % (label, statistics.median(times), min(times), len(times)))


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--files", type=int, default=10000)
    opts = parser.parse_args()
    if os.geteuid() != 0:
        sys.exit("bench: run as root")
    if os.environ.get("LW_BENCH_NAMESPACE") != "1":
        os.execvpe("unshare", ["unshare", "--mount", "--propagation", "private", sys.executable] + sys.argv,
                   dict(os.environ, LW_BENCH_NAMESPACE="1"))
    workdir = tempfile.mkdtemp(prefix="lwbench-snap-")
    bench = Bench(workdir, opts.files)
    try:
        bench.setup()
        print("bench: first boot took %.3f s" % bench.boot())
        print("bench: %d files of 1 KiB written into the state" % bench.fill())
        times = {key: [] for key in ("ping", "snapshot", "delete", "request", "everyday", "rollback", "boot-snapshot")}
        bench.reboot()
        for index in range(opts.rounds):
            times["ping"].append(bench.module("ansible.builtin.ping"))
            times["snapshot"].append(bench.snap(name="round%d" % index))
            times["delete"].append(bench.snap(state="absent", name="round%d" % index))
            bench.snap(name="base%d" % index)
            times["request"].append(bench.snap(state="rolled_back", name="base%d" % index, keep_current=False))
            times["rollback"].append(bench.reboot())
            bench.expect("state_change", "rolled back to base%d" % index)
            times["everyday"].append(bench.reboot())
            bench.expect("state_change", None)
            times["boot-snapshot"].append(bench.reboot(lightwhale_persistence_boot_snapshots=3))
        print("bench: %d rounds; %d CPU(s), load %s; %s" % (
            opts.rounds, os.cpu_count(), open("/proc/loadavg").read().split()[:3],
            sh([os.path.join(BIN, "ansible"), "--version"], env=bench.env).stdout.splitlines()[0]))
        for key, values in times.items():
            line(key, values)
        print("%-14s %+.3f s (rollback boot - everyday boot, medians)" % (
            "rollback cost", statistics.median(times["rollback"]) - statistics.median(times["everyday"])))
        print("%-14s %+.3f s (boot-snapshot boot - everyday boot, medians)" % (
            "boot snapshot", statistics.median(times["boot-snapshot"]) - statistics.median(times["everyday"])))
    finally:
        bench.teardown()
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
