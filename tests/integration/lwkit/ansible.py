"""Run the collection through real `ansible` / `ansible-playbook` processes.

The collection is built from the repository with `ansible-galaxy collection build` and installed
with `ansible-galaxy collection install -p <tmp>/collections`, once per session, so the tests
exercise exactly what a user installs.

Results: a small notification callback shipped with the kit (callback_plugins/lwkit_results.py)
writes every task result unabridged as one JSON line to a file per run. That is more robust than
parsing what the stdout callback prints: the `minimal` callback's "host | FAILED! => {...}" text
is for humans (ansible-core ships no json stdout callback anymore; ansible.posix has one, but
the kit needs no other collection), and the callback also keeps `diff`, `warnings` and
`exception` that stdout callbacks strip. If the callback wrote nothing (a crash before any task
ran), run_module falls back to the JSON after "=> " in the minimal output, and if that fails too
it returns rc with an empty result, so a test sees the failure and its stdout/stderr.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
from dataclasses import dataclass, field

KIT_DIR = os.path.dirname(os.path.abspath(__file__))
CALLBACK_DIR = os.path.join(KIT_DIR, "callback_plugins")
NAMESPACE, NAME = "lightwhale", "persistence"
FQCN_PREFIX = f"{NAMESPACE}.{NAME}."


@dataclass
class RunResult:
    """One `ansible` or `ansible-playbook` run."""

    rc: int
    cmd: list
    stdout: str
    stderr: str
    result: dict = field(default_factory=dict)  # run_module: the module's result
    results: list = field(default_factory=list)  # every task result record (JSON lines)
    stats: dict = field(default_factory=dict)  # run_playbook: per-host summary

    # dict-like access to the module result
    def __getitem__(self, key):
        return self.result[key]

    def __contains__(self, key):
        return key in self.result

    def get(self, key, default=None):
        return self.result.get(key, default)

    @property
    def failed(self):
        return bool(self.result.get("failed")) or (self.rc != 0 and not self.result.get("skipped"))

    @property
    def changed(self):
        return bool(self.result.get("changed"))

    @property
    def msg(self):
        return str(self.result.get("msg", ""))

    def explain(self):
        """Everything useful for an assertion message."""
        return (
            f"$ {' '.join(self.cmd)}\nrc={self.rc}\nresult={json.dumps(self.result, indent=1, sort_keys=True)}\n"
            f"--- stdout ---\n{self.stdout[-6000:]}\n--- stderr ---\n{self.stderr[-4000:]}"
        )


class AnsibleRunner:
    def __init__(self, repo_root, workdir, python=None, timeout=600):
        self.repo_root = os.path.abspath(repo_root)
        self.workdir = workdir
        self.python = python or sys.executable
        self.timeout = timeout
        bindir = os.path.dirname(self.python)
        self.ansible = self._tool(bindir, "ansible")
        self.ansible_playbook = self._tool(bindir, "ansible-playbook")
        self.ansible_galaxy = self._tool(bindir, "ansible-galaxy")
        self.collections_dir = os.path.join(workdir, "collections")
        self.home = os.path.join(workdir, "ansible_home")
        self.tmp = os.path.join(workdir, "ansible_tmp")
        for d in (self.home, self.tmp, os.path.join(self.tmp, "local"), os.path.join(self.tmp, "remote")):
            os.makedirs(d, exist_ok=True)
        self._counter = 0
        self.tarball = None
        self.build_log = ""

    @staticmethod
    def _tool(bindir, name):
        cand = os.path.join(bindir, name)
        if os.access(cand, os.X_OK):
            return cand
        found = shutil.which(name)
        if not found:
            raise RuntimeError(f"{name} not found next to {bindir} nor on PATH")
        return found

    # ------------------------------------------------------------------ environment
    def env(self, extra=None):
        env = dict(os.environ)
        for k in list(env):
            if k.startswith("ANSIBLE_") or k == "LWKIT_RESULTS_FILE":
                del env[k]
        env.update(
            {
                "LC_ALL": "C.UTF-8",
                "LANG": "C.UTF-8",
                "ANSIBLE_CONFIG": os.path.join(self.workdir, "ansible.cfg"),  # empty file
                "ANSIBLE_HOME": self.home,
                "ANSIBLE_LOCAL_TEMP": os.path.join(self.tmp, "local"),
                "ANSIBLE_REMOTE_TEMP": os.path.join(self.tmp, "remote"),
                "ANSIBLE_COLLECTIONS_PATH": self.collections_dir,
                "ANSIBLE_COLLECTIONS_SCAN_SYS_PATH": "False",
                "ANSIBLE_NOCOLOR": "1",
                "ANSIBLE_FORCE_COLOR": "0",
                "ANSIBLE_HOST_KEY_CHECKING": "False",
                "ANSIBLE_RETRY_FILES_ENABLED": "False",
                "ANSIBLE_PYTHON_INTERPRETER": self.python,
                "ANSIBLE_CALLBACK_PLUGINS": CALLBACK_DIR,
                "ANSIBLE_CALLBACKS_ENABLED": "lwkit_results",
                "ANSIBLE_LOAD_CALLBACK_PLUGINS": "1",
                "ANSIBLE_STDOUT_CALLBACK": "default",
                "ANSIBLE_DEPRECATION_WARNINGS": "False",
                "ANSIBLE_SYSTEM_WARNINGS": "True",
                "ANSIBLE_GATHERING": "explicit",
                # the venv's bin first, so modules find what the venv has
                "PATH": os.path.dirname(self.python) + os.pathsep + env.get("PATH", "/usr/sbin:/usr/bin:/sbin:/bin"),
            }
        )
        if extra:
            env.update(extra)
        return env

    # ------------------------------------------------------------------ build + install
    def build_and_install(self):
        open(os.path.join(self.workdir, "ansible.cfg"), "w").close()
        build_dir = os.path.join(self.workdir, "build")
        os.makedirs(build_dir, exist_ok=True)
        logs = []
        cmd = [self.ansible_galaxy, "collection", "build", "--force", "--output-path", build_dir, self.repo_root]
        p = subprocess.run(cmd, capture_output=True, text=True, env=self.env(), cwd=self.workdir, timeout=self.timeout,
                           check=False)
        logs.append(f"$ {' '.join(cmd)}\n{p.stdout}{p.stderr}")
        if p.returncode != 0:
            self.build_log = "\n".join(logs)
            raise RuntimeError(f"collection build failed:\n{self.build_log}")
        tarballs = [f for f in os.listdir(build_dir) if f.endswith(".tar.gz")]
        if len(tarballs) != 1:
            raise RuntimeError(f"expected one tarball in {build_dir}, found {tarballs}")
        self.tarball = os.path.join(build_dir, tarballs[0])
        cmd = [self.ansible_galaxy, "collection", "install", "--force", "-p", self.collections_dir, self.tarball]
        p = subprocess.run(cmd, capture_output=True, text=True, env=self.env(), cwd=self.workdir, timeout=self.timeout,
                           check=False)
        logs.append(f"$ {' '.join(cmd)}\n{p.stdout}{p.stderr}")
        self.build_log = "\n".join(logs)
        if p.returncode != 0:
            raise RuntimeError(f"collection install failed:\n{self.build_log}")
        return self.tarball

    def installed_path(self):
        return os.path.join(self.collections_dir, "ansible_collections", NAMESPACE, NAME)

    def has_module(self, name):
        return os.path.isfile(os.path.join(self.installed_path(), "plugins", "modules", f"{name}.py"))

    def tarball_members(self):
        with tarfile.open(self.tarball) as tf:
            return tf.getnames()

    # ------------------------------------------------------------------ runs
    def _next_results_file(self):
        self._counter += 1
        return os.path.join(self.workdir, f"results-{self._counter:04d}.jsonl")

    def run_module(self, name, args=None, check=False, diff=False, verbosity=0, env=None, timeout=None):
        """ansible localhost -c local -i localhost, -m lightwhale.persistence.<name> -a <json>."""
        fqcn = name if "." in name else FQCN_PREFIX + name
        results_file = self._next_results_file()
        cmd = [
            self.ansible, "localhost", "-c", "local", "-i", "localhost,",
            "-e", f"ansible_python_interpreter={self.python}",
            "-m", fqcn, "-a", json.dumps(args or {}),
        ] + mode_args(check, diff, verbosity)
        p = subprocess.run(
            cmd, capture_output=True, text=True, cwd=self.workdir, timeout=timeout or self.timeout, check=False,
            env=self.env(dict(env or {}, LWKIT_RESULTS_FILE=results_file)),
        )
        recs = read_records(results_file)
        result = {}
        task_recs = [r for r in recs if r.get("event") in ("ok", "failed", "unreachable", "skipped")]
        if task_recs:
            result = task_recs[-1].get("result") or {}
        else:
            result = _parse_minimal(p.stdout)
        return RunResult(rc=p.returncode, cmd=cmd, stdout=p.stdout, stderr=p.stderr, result=result, results=recs)

    def run_playbook(self, yaml_text, extravars=None, check=False, diff=False, verbosity=0, env=None,
                     timeout=None, inventory="localhost,", limit=None):
        """Write the playbook to the run's temp dir and run ansible-playbook on it.

        Returns RunResult with .results (every task result record: event, host, task, action,
        result) and .stats (per-host ok/changed/failures...). Extra vars go through a JSON file."""
        self._counter += 1
        base = os.path.join(self.workdir, f"play-{self._counter:04d}")
        os.makedirs(base, exist_ok=True)
        pb = os.path.join(base, "playbook.yml")
        with open(pb, "w", encoding="utf-8") as fh:
            fh.write(yaml_text)
        results_file = os.path.join(base, "results.jsonl")
        cmd = [self.ansible_playbook, "-i", inventory, "-e", f"ansible_python_interpreter={self.python}"]
        if extravars:
            ev = os.path.join(base, "extravars.json")
            with open(ev, "w", encoding="utf-8") as fh:
                json.dump(extravars, fh)
            cmd += ["-e", "@" + ev]
        cmd += mode_args(check, diff, verbosity)
        if limit:
            cmd += ["--limit", limit]
        cmd.append(pb)
        p = subprocess.run(
            cmd, capture_output=True, text=True, cwd=base, timeout=timeout or self.timeout, check=False,
            env=self.env(dict(env or {}, LWKIT_RESULTS_FILE=results_file)),
        )
        return playbook_result(p, cmd, results_file)


def mode_args(check=False, diff=False, verbosity=0):
    """The command-line flags of a run's mode: --check, --diff, -v..."""
    args = []
    if check:
        args.append("--check")
    if diff:
        args.append("--diff")
    if verbosity:
        args.append("-" + "v" * verbosity)
    return args


def read_records(path):
    """The task result records the kit's callback wrote to `path` (one JSON object a line); none if it is missing."""
    recs = []
    if os.path.exists(path):
        with open(path, encoding="utf-8") as fh:
            for line in fh:
                if line.strip():
                    recs.append(json.loads(line))
    return recs


def playbook_result(proc, cmd, results_file):
    """RunResult of a finished ansible-playbook process: every task record and the stats, from its results file."""
    recs = read_records(results_file)
    stats = {}
    for r in recs:
        if r.get("event") == "stats":
            stats = r.get("stats", {})
    return RunResult(rc=proc.returncode, cmd=cmd, stdout=proc.stdout, stderr=proc.stderr,
                     results=[r for r in recs if r.get("event") != "stats"], stats=stats)


_MINIMAL_RE = re.compile(r"^\S+ \| [A-Z!]+(?: \| rc=\d+)? => \{", re.M)


def _parse_minimal(stdout):
    """Fallback: the JSON after '=> ' in the minimal callback's output."""
    m = _MINIMAL_RE.search(stdout)
    if not m:
        return {}
    start = m.end() - 1
    try:
        obj, _end = json.JSONDecoder().raw_decode(stdout[start:])
        return obj
    except ValueError:
        return {}


def make_runner(workdir=None):
    """A runner outside pytest (e.g. from a Python shell): builds and installs into a temp dir."""
    here = KIT_DIR
    repo = os.path.abspath(os.path.join(here, "..", "..", ".."))
    workdir = workdir or tempfile.mkdtemp(prefix="lwansible-")
    r = AnsibleRunner(repo, workdir)
    r.build_and_install()
    return r
