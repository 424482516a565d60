"""Helpers for the boot tests: the boot playbook run by its FQCN with the boot hook's environment, in the test's
mount namespace or in a fresh one (a "boot" of its own: its mounts vanish when it ends, like at a reboot).

- WRAPPER, S11, UNIT          the boot hook's files in the repository (roles/boot_hook/files)
- hook_environment(root, collections_path)
                              {name: value} the wrapper exports for the playbook (it prints them: `wrapper env`)
- BootRunner(ansible)         .boot(root, devices, ...) -> RunResult; .boot_in_namespace(...) -> (RunResult, output)
- swapoff_disks(disks)        swap off every partition of these disks (a reboot turns swap off; swap is global)
- status_of(root)             the status file, parsed; None when missing
- hash_images(disks)          {loop path: sha256 of its backing image}
- ok(res, changed=None)       assert a run succeeded (and changed something, or nothing); returns it
- findmnt(target)             the top mount at target (findmnt -J), or None
- fs_df(mountpoint)           {"Data": {"raid1"}, "Metadata": {...}, ...} from `btrfs filesystem df`
- power_off(disks)            after a boot in its own namespace: swap off, partitions and btrfs members forgotten
- unplug(disk), replug(disk)  take a kit disk off the machine (losetup -d, image kept) and attach it again
- BootRunner.spawn(...)       start a boot without waiting (Popen) -> SpawnedBoot; .wait() -> RunResult

A run's task results come from the kit's callback (lwkit_results), added to the hook's environment.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import tempfile
import time

from .ansible import CALLBACK_DIR, mode_args, playbook_result
from .disk import sha256_of
from .sysutil import read_swaps, run

REPO_ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))
HOOK_FILES = os.path.join(REPO_ROOT, "roles", "boot_hook", "files")
WRAPPER = os.path.join(HOOK_FILES, "lightwhale-persistence-boot")
S11 = os.path.join(HOOK_FILES, "S11persistence")
UNIT = os.path.join(HOOK_FILES, "lightwhale-persistence.service")
PLAYBOOK = "lightwhale.persistence.boot"
STATUS = "run/lightwhale/persistence.json"


def hook_environment(root, collections_path, extra=None):
    """The variables the wrapper sets for the playbook, as it prints them with `env` (one source of truth)."""
    env = {"PATH": os.environ.get("PATH", "/usr/sbin:/usr/bin:/sbin:/bin"),
           "LIGHTWHALE_PERSISTENCE_CONFIG": "/nonexistent",
           "LIGHTWHALE_PERSISTENCE_ROOT": root,
           "LIGHTWHALE_PERSISTENCE_COLLECTIONS_PATH": collections_path}
    env.update(extra or {})
    out = subprocess.run(["sh", WRAPPER, "env"], check=True, capture_output=True, text=True, env=env).stdout
    found = {}
    for line in out.splitlines():
        name, _sep, value = line[len("export "):].partition("=")
        found[name] = shlex.split(value)[0] if value != "''" else ""
    return found


def status_of(root):
    try:
        with open(os.path.join(root, STATUS), encoding="utf-8") as fh:
            return json.load(fh)
    except FileNotFoundError:
        return None


def swapoff_disks(disks):
    """Swap off the partitions of these disks. By /dev path: /proc/swaps prints an area activated in a mount
    namespace that has ended as "/loop0p1" (its /dev is gone), a path swapoff cannot open."""
    names = tuple(os.path.basename(str(d)) + "p" for d in disks)
    for area in read_swaps():
        name = os.path.basename(area)
        if name.startswith(names):
            run(["swapoff", "/dev/" + name], check=False)


def hash_images(disks):
    return {d.path: sha256_of(d.image) for d in disks}


def ok(res, changed=None):
    """The run succeeded; with changed=True/False it also changed something / nothing."""
    assert res.rc == 0, res.explain()
    if changed is not None:
        got = res.stats.get("localhost", {}).get("changed")
        assert (got > 0) is changed, f"expected changed {'> 0' if changed else '= 0'}, got {got}\n" + res.explain()
    return res


def findmnt(target):
    """The top mount at target as findmnt prints it (target, source, fstype, fsroot, options), or None."""
    proc = run(["findmnt", "-J", "-o", "TARGET,SOURCE,FSTYPE,FSROOT,OPTIONS", "--mountpoint", target], check=False)
    return json.loads(proc.stdout)["filesystems"][-1] if proc.returncode == 0 else None


def fs_df(mountpoint):
    """Block-group profiles by kind, from `btrfs filesystem df`: {"Data": {"raid1"}, "Metadata": {...}, ...}."""
    out = run(["btrfs", "filesystem", "df", mountpoint]).stdout
    profiles = {}
    for line in out.splitlines():
        kind, _sep, rest = line.partition(",")
        profiles.setdefault(kind.strip(), set()).add(rest.split(":")[0].strip().lower())
    return profiles


def power_off(disks):
    """After a boot in its own namespace ended: what a reboot also does - swap off, the kernel forgets the
    partitions and the btrfs members (the next boot finds them again by itself)."""
    swapoff_disks(disks)
    for disk in disks:
        for node in disk.partition_nodes():
            run(["btrfs", "device", "scan", "--forget", node], check=False)
        if disk.partition_nodes():
            run(["partx", "-d", disk.path], check=False)


def unplug(disk):
    """The disk is pulled: its loop device is detached (the image stays). Power it off first (power_off)."""
    from . import loop as _loop  # the kit's registry: a pulled disk is still the test's, torn down at its end

    with _loop._lock:
        back = _loop._backing_file(disk.path)
        assert back is not None and os.path.realpath(back) == os.path.realpath(disk.image), (disk.path, back)
        run(["losetup", "-d", disk.path])
        disk._pulled = True


def replug(disk):
    """The pulled disk is attached again (it may get another /dev/loopN: disk.path is updated)."""
    from . import loop as _loop

    with _loop._lock:
        path = run(["losetup", "-f", "--show", disk.image]).stdout.strip()
        if _loop._registry.get(disk.path) is disk:
            del _loop._registry[disk.path]
        disk.path = path
        disk._pulled = False
        _loop._registry[path] = disk
    return disk


class SpawnedBoot:
    """A boot started with BootRunner.spawn(); wait() collects it as a RunResult."""

    def __init__(self, proc, cmd, results_file):
        self.proc, self.cmd, self.results_file = proc, cmd, results_file

    def wait(self, timeout=900):
        stdout, stderr = self.proc.communicate(timeout=timeout)
        done = subprocess.CompletedProcess(self.cmd, self.proc.returncode, stdout, stderr)
        return playbook_result(done, self.cmd, self.results_file)


class BootRunner:
    """Runs `ansible-playbook lightwhale.persistence.boot` as the boot hook does, with the kit's result callback."""

    def __init__(self, ansible):
        self.ansible = ansible

    def environment(self, root, results_file, extra=None):
        env = {k: v for k, v in os.environ.items() if not k.startswith(("ANSIBLE_", "LIGHTWHALE_"))}
        env.update(hook_environment(root, self.ansible.collections_dir))
        env.update({
            "PATH": os.path.dirname(self.ansible.python) + os.pathsep + env.get("PATH", "/usr/sbin:/usr/bin:/sbin:/bin"),
            "ANSIBLE_CALLBACK_PLUGINS": CALLBACK_DIR,
            "ANSIBLE_CALLBACKS_ENABLED": "lwkit_results",
            "LWKIT_RESULTS_FILE": results_file,
        })
        env.update(extra or {})
        return env

    def command(self, root, devices, check=False, diff=False, variables=None, verbosity=0):
        evars = {"lightwhale_persistence_root": root}
        if devices is not None:
            evars["lightwhale_persistence_devices"] = [str(d) for d in devices]
        evars.update(variables or {})
        return [self.ansible.ansible_playbook, PLAYBOOK, "-e", json.dumps(evars)] + mode_args(check, diff, verbosity)

    def _base(self):
        return tempfile.mkdtemp(prefix="boot-", dir=self.ansible.workdir)

    def boot(self, root, devices, check=False, diff=False, variables=None, env=None, cwd=None, timeout=900):
        """One boot run in this process's mount namespace (its mounts stay for the test to look at)."""
        base = self._base()
        results_file = os.path.join(base, "results.jsonl")
        cmd = self.command(root, devices, check=check, diff=diff, variables=variables)
        proc = subprocess.run(cmd, capture_output=True, text=True, cwd=cwd or "/", timeout=timeout, check=False,
                              env=self.environment(root, results_file, env))
        return playbook_result(proc, cmd, results_file)

    def spawn(self, root, devices, variables=None, env=None, gate=None):
        """Start one boot in this process's mount namespace without waiting for it. With `gate` (a path), the
        process waits until that file exists before it execs ansible-playbook: create it to start several
        spawned boots at the same moment."""
        base = self._base()
        results_file = os.path.join(base, "results.jsonl")
        cmd = self.command(root, devices, variables=variables)
        if gate:
            cmd = ["sh", "-c", 'while [ ! -e "$0" ]; do sleep 0.005; done; exec "$@"', gate] + cmd
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd="/",
                                env=self.environment(root, results_file, env))
        return SpawnedBoot(proc, cmd, results_file)

    def boot_in_namespace(self, root, devices, after="", before="", variables=None, fresh_run=True, timeout=900):
        """A whole boot in a new private mount namespace: a fresh tmpfs on <root>/run (as at boot), the playbook,
        then the shell snippet `after` (its output is returned). Everything mounted vanishes when it ends; swap
        stays on (global): call swapoff_disks() to finish the "shutdown"."""
        base = self._base()
        results_file = os.path.join(base, "results.jsonl")
        after_out = os.path.join(base, "after.out")
        cmd = self.command(root, devices, variables=variables)
        script = "\n".join([
            "set -u",
            f"ROOT={shlex.quote(root)}",
            'mount -t tmpfs -o mode=0755 lwboot-run "$ROOT/run" || exit 90' if fresh_run else ":",
            before or ":",
            # What the wrapper makes before it runs the playbook (`env` made it outside, under the new /run's floor).
            'mkdir -p "$ANSIBLE_LOCAL_TEMP" && chmod 0700 "$ANSIBLE_HOME" && : > "$ANSIBLE_CONFIG" || exit 89',
            '"$@"',
            "rc=$?",
            f"( {after or ':'} ) > {shlex.quote(after_out)} 2>&1",
            # A background conversion keeps this namespace and its mounts alive: the "shutdown" waits for it.
            'job="$ROOT/run/lightwhale/conversion.json"; pid=$(sed -n \'s/.*"pid": *\\([0-9]*\\).*/\\1/p\' "$job" 2>/dev/null)',
            'n=0; while [ -n "$pid" ] && [ -s "/proc/$pid/cmdline" ] && [ $n -lt 1200 ]; do sleep 0.1; n=$((n+1)); done',
            "exit $rc",
        ])
        full = ["unshare", "--mount", "--propagation", "private", "sh", "-c", script, "sh"] + cmd
        proc = subprocess.run(full, capture_output=True, text=True, cwd="/", timeout=timeout, check=False,
                              env=self.environment(root, results_file))
        output = ""
        if os.path.exists(after_out):
            with open(after_out, encoding="utf-8", errors="replace") as fh:
                output = fh.read()
        return playbook_result(proc, full, results_file), output


def task_results(res, action=None, name_part=None):
    """Task result records of a run, optionally only those of one module (short name) or whose name has a part."""
    out = []
    for rec in res.results:
        if rec.get("event") not in ("ok", "failed", "skipped"):
            continue
        if action and not str(rec.get("action", "")).endswith(action):
            continue
        if name_part and name_part not in str(rec.get("task", "")):
            continue
        out.append(rec)
    return out


def module_runs(res):
    """How many modules of the collection ran (task results that are not skipped), by short name."""
    counts = {}
    for rec in res.results:
        action = str(rec.get("action", ""))
        if rec.get("event") in ("ok", "failed") and action.startswith("lightwhale.persistence."):
            name = action.rsplit(".", 1)[1]
            counts[name] = counts.get(name, 0) + 1
    return counts


def wait_conversion(run_dir, timeout=120):
    """Wait until the background conversion started under `run_dir` (its job file) has ended; returns the job."""
    path = os.path.join(run_dir, "conversion.json")
    if not os.path.exists(path):
        return None
    with open(path, encoding="utf-8") as fh:
        job = json.load(fh)
    deadline = time.monotonic() + timeout
    while _running(job["pid"]) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not _running(job["pid"]), f"the background conversion {job} still runs after {timeout} s"
    return job


def _running(pid):
    """A process that is not a zombie (a zombie's cmdline is empty)."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as fh:
            return bool(fh.read())
    except OSError:
        return False
