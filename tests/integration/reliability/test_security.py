"""Security: modes and owners of everything a boot creates, no world-writable path, no shell anywhere,
and a symbolic link planted where the boot creates a directory is refused, never followed.

- test_no_shell_in_the_plugins: an AST walk over plugins/: no shell=True / use_unsafe_shell=True, no os.system,
  os.popen, os.exec*/spawn*, subprocess or pty; every run_command call and every Runner.run call gets a list.
- test_modes_and_owners_after_a_boot: a real first boot (role lightwhale.persistence.boot on magic loop disks, in a
  sandbox root), then every path the boot created under <root>/run/lightwhale and <root>/mnt/lightwhale-data is
  walked: the expected mode and owner for each named one (the modes the code sets: /run/lightwhale 0755, the lock
  0600, the status file 0644, the state dir and the overlay bases 0755, each upper dir the mode and owner of the
  image's directory, each work dir 0755, Docker's data root 0710, root-owned), and nothing world-writable unless
  it mirrors a sticky image directory with the same mode.
- test_a_planted_symlink_is_not_followed: a link to a canary directory outside the sandbox, planted before the
  boot where the boot would create a directory (/run/lightwhale, the data mount point; on the data filesystem
  between two boots: an overlay's upper dir, another's work dir, Docker's data root). The boot refuses it with a
  message naming the link, and the canary is unchanged (same entries, modes, owners, contents).
"""

from __future__ import annotations

import ast
import contextlib
import os
import stat
import subprocess
import tempfile

import pytest
from lwkit import figures
from lwkit.boot import WRAPPER, swapoff_disks, task_results
from lwkit.overlay import SAMPLE_FILES, tree
from lwkit.sysutil import run

REPO_ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))
PLUGINS = os.path.join(REPO_ROOT, "plugins")

pytestmark = [pytest.mark.needs_module(name) for name in ("magic_disk", "lw_datafs", "lw_overlay",
                                                          "docker_data_root", "lw_status")]

RUN = "run/lightwhale"
DATA = "mnt/lightwhale-data"
STATE = DATA + "/lightwhale-state"
OVERLAYS = ("etc", "var", "home")


# ------------------------------------------------------------------------------------------ no shell (static)

FORBIDDEN_CALLS = {("os", "system"), ("os", "popen"), ("os", "spawnl"), ("os", "spawnlp"), ("os", "spawnv"),
                   ("os", "spawnvp"), ("os", "execv"), ("os", "execvp"), ("os", "execl"), ("os", "execlp"),
                   ("os", "execve"), ("os", "execvpe"), ("pty", "spawn")}
FORBIDDEN_MODULES = {"subprocess", "commands", "pty", "popen2"}
LIST_NODES = (ast.List, ast.ListComp)


def _is_list_expr(node, assigned):
    """Whether an expression is certainly a list: a literal, a comprehension, a concatenation of lists, or a
    name last assigned such a thing in the same function."""
    if isinstance(node, LIST_NODES):
        return True
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        return _is_list_expr(node.left, assigned) and _is_list_expr(node.right, assigned)
    if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "list":
        return True
    if isinstance(node, ast.Name) and node.id in assigned:
        return all(_is_list_expr(value, {}) for value in assigned[node.id])
    return False


def shell_findings(path):
    """Every use of a shell or a command given as a string in one Python file, as 'file:line: what'."""
    with open(path, encoding="utf-8") as fh:
        source = fh.read()
    tree_ = ast.parse(source, path)
    rel = os.path.relpath(path, REPO_ROOT)
    found = []
    for node in ast.walk(tree_):
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            names = [alias.name for alias in node.names] + ([node.module] if isinstance(node, ast.ImportFrom) else [])
            for name in names:
                if name and name.split(".")[0] in FORBIDDEN_MODULES:
                    found.append(f"{rel}:{node.lineno}: imports {name}")
        if isinstance(node, ast.keyword) and node.arg in ("shell", "use_unsafe_shell"):
            if not (isinstance(node.value, ast.Constant) and node.value.value is False):
                found.append(f"{rel}:{node.value.lineno}: {node.arg}={ast.unparse(node.value)}")
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            owner = getattr(node.func.value, "id", None)
            if (owner, node.func.attr) in FORBIDDEN_CALLS:
                found.append(f"{rel}:{node.lineno}: calls {owner}.{node.func.attr}")
    # run_command(cmd) and Runner.run(tool, args): the command as a list, never a string for a shell to split.
    for func in [n for n in ast.walk(tree_) if isinstance(n, (ast.FunctionDef, ast.Lambda))] + [tree_]:
        assigned = {}
        for node in ast.walk(func):
            if isinstance(node, ast.Assign):
                for target in node.targets:
                    if isinstance(target, ast.Name):
                        assigned.setdefault(target.id, []).append(node.value)
        for node in ast.walk(func):
            if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
                continue
            if node.func.attr == "run_command":
                arg = node.args[0] if node.args else next((k.value for k in node.keywords if k.arg == "args"), None)
                if arg is None or not _is_list_expr(arg, assigned):
                    found.append(f"{rel}:{node.lineno}: run_command without a list: {ast.unparse(node)[:120]}")
            elif node.func.attr == "run" and len(node.args) >= 2 and isinstance(node.args[0], ast.Constant):
                # Runner.run('tool', args): the tool by name, its arguments as a list
                if not _is_list_expr(node.args[1], assigned):
                    found.append(f"{rel}:{node.lineno}: Runner.run arguments not a list: {ast.unparse(node)[:120]}")
    # the module and each function are walked (a call inside a function is seen by both): once each
    return sorted(set(found), key=lambda f: (int(f.split(":")[1]), f))


def python_files(top):
    for dirpath, _dirs, files in os.walk(top):
        if "__pycache__" in dirpath:
            continue
        for name in files:
            if name.endswith(".py"):
                yield os.path.join(dirpath, name)


def test_the_static_check_finds_what_it_looks_for(tmp_path):
    """The checker itself: each forbidden form is found (a check that cannot fail proves nothing)."""
    bad = tmp_path / "bad.py"
    bad.write_text(
        "import subprocess\n"
        "import os\n"
        "os.system('ls')\n"
        "module.run_command('ls -l /', use_unsafe_shell=True)\n"
        "def f(runner, dev):\n"
        "    cmd = 'wipefs ' + dev\n"
        "    module.run_command(cmd)\n"
        "    runner.run('mount', '--bind a b')\n"
        "    args = ['-t', 'tmpfs']\n"
        "    runner.run('mount', args + [dev])\n"
        "    module.run_command([tool] + args)\n"
    )
    found = shell_findings(str(bad))
    kinds = {(int(f.split(":")[1]), f.split(": ", 1)[1].split(" ")[0]) for f in found}
    assert kinds == {(1, "imports"), (3, "calls"), (4, "use_unsafe_shell=True"), (4, "run_command"),
                     (7, "run_command"), (8, "Runner.run")}, found


def test_no_shell_in_the_plugins():
    files = list(python_files(PLUGINS))
    assert len(files) > 20, files
    calls = 0
    for path in files:
        with open(path, encoding="utf-8") as fh:
            calls += fh.read().count("run_command(")
    found = [f for path in files for f in shell_findings(path)]
    figures.add("no shell", "plugin files with a shell, os.system/popen or a string command", len(found), len(files),
                "files")
    assert calls >= 1, "no run_command call found: the check looks at nothing"
    assert not found, "\n".join(found)


def test_the_roles_run_no_shell():
    """The roles and playbooks use no ansible.builtin.shell/raw/script (command with argv or modules instead)."""
    found = []
    for top in ("roles", "playbooks"):
        for dirpath, _dirs, files in os.walk(os.path.join(REPO_ROOT, top)):
            for name in files:
                if not name.endswith((".yml", ".yaml")):
                    continue
                path = os.path.join(dirpath, name)
                with open(path, encoding="utf-8") as fh:
                    for number, line in enumerate(fh, 1):
                        key = line.strip().split(":", 1)[0]
                        if key in ("shell", "ansible.builtin.shell", "raw", "ansible.builtin.raw", "script",
                                   "ansible.builtin.script"):
                            found.append(f"{os.path.relpath(path, REPO_ROOT)}:{number}: {line.strip()}")
    assert not found, "\n".join(found)


# ------------------------------------------------------------------------------------------ the boot's paths

def p(root, rel):
    return os.path.join(root, rel)


def expected_modes():
    """{path relative to the root: (kind, mode, uid, gid)} of what a first boot creates (the modes the code sets)."""
    want = {
        RUN: ("dir", 0o755, 0, 0),
        RUN + "/persistence.lock": ("file", 0o600, 0, 0),
        RUN + "/persistence.json": ("file", 0o644, 0, 0),
        RUN + "/overlay": ("dir", 0o755, 0, 0),
        RUN + "/overlay/lower": ("dir", 0o755, 0, 0),
        STATE: ("dir", 0o755, 0, 0),
        STATE + "/overlay": ("dir", 0o755, 0, 0),
        STATE + "/overlay/upper": ("dir", 0o755, 0, 0),
        STATE + "/overlay/work": ("dir", 0o755, 0, 0),
        STATE + "/docker": ("dir", 0o710, 0, 0),
        STATE + "/overlay/upper/etc/docker": ("dir", 0o755, 0, 0),
        STATE + "/overlay/upper/etc/docker/daemon.json": ("file", 0o644, 0, 0),
    }
    for d in OVERLAYS:
        _kind, mode, uid, gid, _content = SAMPLE_FILES[d]
        want[f"{STATE}/overlay/upper/{d}"] = ("dir", mode, uid, gid)  # the overlay's root shows the image's
        want[f"{STATE}/overlay/work/{d}"] = ("dir", 0o755, 0, 0)
    return want


def walk_created(root):
    """Every path under <root>/run/lightwhale and <root>/mnt/lightwhale-data, not descending into the overlays'
    lower binds (the image, not created by the boot): {rel: os.stat_result}."""
    out = {}
    for top in (RUN, DATA):
        for dirpath, dirnames, filenames in os.walk(p(root, top)):
            rel_dir = os.path.relpath(dirpath, root)
            if rel_dir == RUN + "/overlay/lower":
                dirnames[:] = []  # the binds of the image's /etc, /var, /home
            for name in [""] + dirnames + filenames:
                path = os.path.join(dirpath, name) if name else dirpath
                out[os.path.relpath(path, root)] = os.lstat(path)
    return out


def kind_of(info):
    return "dir" if stat.S_ISDIR(info.st_mode) else "file" if stat.S_ISREG(info.st_mode) else \
        "link" if stat.S_ISLNK(info.st_mode) else "other"


def test_modes_and_owners_after_a_boot(boot, box, magic_disk):
    disks = [magic_disk("512M", name="magic0")]
    res = boot.boot(box, disks)
    try:
        assert res.rc == 0, res.explain()
        created = walk_created(box)
        problems, checked = [], 0
        for rel, (kind, mode, uid, gid) in sorted(expected_modes().items()):
            info = created.get(rel)
            checked += 1
            if info is None:
                problems.append(f"{rel}: not there")
                continue
            got = (kind_of(info), stat.S_IMODE(info.st_mode), info.st_uid, info.st_gid)
            if got != (kind, mode, uid, gid):
                problems.append(f"{rel}: {got[0]} {got[1]:04o} {got[2]}:{got[3]}, expected {kind} {mode:04o} {uid}:{gid}")
        # Nothing created is world-writable, unless it mirrors a sticky image directory with the same mode
        # (a copy-up of /var/tmp in an upper dir), and no link was created.
        image = {rel: info[1] for rel, info in SAMPLE_FILES.items()}
        upper = STATE + "/overlay/upper/"
        for rel, info in sorted(created.items()):
            checked += 1
            mode = stat.S_IMODE(info.st_mode)
            if stat.S_ISLNK(info.st_mode):
                mirrored = rel[len(upper):] if rel.startswith(upper) else None
                if mirrored not in image:
                    problems.append(f"{rel}: a symbolic link")
                continue
            if mode & stat.S_IWOTH:
                mirrored = rel[len(upper):] if rel.startswith(upper) else None
                if not (stat.S_ISDIR(info.st_mode) and mode & stat.S_ISVTX and image.get(mirrored) == mode):
                    problems.append(f"{rel}: world-writable ({mode:04o})")
            if mode & (stat.S_ISUID | stat.S_ISGID) and not stat.S_ISDIR(info.st_mode):
                problems.append(f"{rel}: setuid/setgid ({mode:04o})")
        figures.add("created paths are safe", "paths with the expected mode and owner, none world-writable",
                    checked - len(problems), checked, "paths")
        assert not problems, "\n".join(problems)
        assert len(created) >= len(expected_modes())
    finally:
        swapoff_disks(disks)


# ------------------------------------------------------------------------------------------ planted links

def make_canary(workdir, name):
    """A directory outside the sandbox with a mode and a file: a followed link would change one of them."""
    canary = os.path.join(workdir, "canary-" + name.replace("/", "_"))
    os.makedirs(canary)
    with open(os.path.join(canary, "keep"), "w", encoding="utf-8") as fh:
        fh.write("canary\n")
    os.chmod(canary, 0o750)
    return canary


def failures_naming(res, needle):
    """Failed task results (or the status file's failure) whose message names needle."""
    msgs = [str(r.get("result", {}).get("msg", "")) for r in task_results(res) if r.get("event") == "failed"]
    msgs += [str((r.get("result", {}).get("status") or {}).get("failure", "")) for r in task_results(res)]
    return [m for m in msgs if needle in m]


def plant(box, lw_workdir, where):
    canary = make_canary(lw_workdir, where)
    target = p(box, where)
    os.makedirs(os.path.dirname(target), exist_ok=True)
    os.symlink(canary, target)
    return canary, tree(canary), target


def test_a_planted_symlink_at_run_lightwhale_is_not_followed(ansible, box, lw_workdir):
    """/run/lightwhale (the lock, the status file, the boot hook's Ansible files) a link to a canary: the boot hook's
    wrapper and every module that writes there refuse it. (On Lightwhale /run is a fresh root-only tmpfs at each
    boot, so this takes root already; still, nothing follows it.)"""
    canary, before, target = plant(box, lw_workdir, RUN)
    env = {"PATH": os.environ.get("PATH", "/usr/sbin:/usr/bin:/sbin:/bin"), "LIGHTWHALE_PERSISTENCE_CONFIG": "/nonexistent",
           "LIGHTWHALE_PERSISTENCE_ROOT": box, "LIGHTWHALE_PERSISTENCE_COLLECTIONS_PATH": ansible.collections_dir}
    hook = subprocess.run(["sh", WRAPPER, "env"], capture_output=True, text=True, env=env, check=False)
    results = [("boot hook wrapper", hook.returncode != 0, hook.stdout + hook.stderr)]
    for module, args in (("docker_data_root", {"root": box}),
                         ("lw_status", {"root": box, "mode": "volatile", "failure": "test"}),
                         ("lw_overlay", {"root": box, "paths": ["/etc"]})):
        res = ansible.run_module(module, args)
        results.append((module, res.failed, res.msg))
    problems = [f"{who}: {'accepted' if not refused else 'no message naming the link'}: {text[-300:]}"
                for who, refused, text in results
                if not (refused and target in text and "symbolic link" in text)]
    changed = tree(canary) != before
    figures.add("planted symlinks are not followed", "links refused, canary unchanged",
                len(results) - len(problems) if not changed else 0, len(results), "runs")
    assert not changed, f"the canary behind {target} changed: {before} -> {tree(canary)}"
    assert os.path.islink(target) and os.readlink(target) == canary
    assert not problems, "\n".join(problems)


def test_a_planted_symlink_at_the_data_mount_point_is_not_followed(boot, box, magic_disk, lw_workdir):
    """/mnt/lightwhale-data a link to a canary before the first boot: the data filesystem is not mounted through it
    (nor the volatile tmpfs), the boot fails naming it, the canary is unchanged."""
    disks = [magic_disk("512M", name="magic0")]
    canary, before, target = plant(box, lw_workdir, DATA)
    try:
        res = boot.boot(box, disks)
        after = tree(canary)
        named = failures_naming(res, target)
        ok = after == before and os.path.islink(target) and bool(named) and res.rc != 0
        figures.add("planted symlinks are not followed", "links refused, canary unchanged", int(ok), 1, "runs")
        assert after == before, f"the canary behind {target} changed: {before} -> {after}\n" + res.explain()
        assert os.path.islink(target) and os.readlink(target) == canary
        assert res.rc != 0, "the boot succeeded through a planted link\n" + res.explain()
        assert named and "symbolic link" in named[0], "no failure names the link\n" + res.explain()
    finally:
        swapoff_disks(disks)


@contextlib.contextmanager
def state_mounted(disk, workdir):
    """The state subvolume of the data filesystem on disk, mounted in this namespace as an operator (or someone with
    the disk) would, between two boots."""
    state = tempfile.mkdtemp(prefix="state-", dir=workdir)
    run(["mount", "-o", "subvol=@lightwhale-state", disk.part(2), state])
    try:
        yield state
    finally:
        run(["umount", state])


def test_a_planted_symlink_on_the_data_filesystem_is_not_followed(boot, box, magic_disk, lw_workdir):
    """Between two boots, on the data filesystem: /var's upper dir, /home's work dir and Docker's data root
    replaced by links to canaries. The second boot refuses each, naming it; the canaries are unchanged."""
    disks = [magic_disk("512M", name="magic0")]
    try:
        first, _out = boot.boot_in_namespace(box, disks)
        assert first.rc == 0, first.explain()
        # Boot 2: /var's upper dir and /home's work dir are links (the overlays step refuses before mounting any, and
        # Docker's step, which writes daemon.json through the /etc overlay, does not run). Boot 3: those links gone,
        # Docker's data root is one.
        problems, plants = [], {}
        for rels in (("overlay/upper/var", "overlay/work/home"), ("docker",)):
            with state_mounted(disks[0], lw_workdir) as state:
                for old in [r for r in plants if os.path.islink(os.path.join(state, r))]:
                    os.unlink(os.path.join(state, old))
                for rel in rels:
                    run(["rm", "-rf", "--one-file-system", os.path.join(state, rel)])
                    canary = make_canary(lw_workdir, rel)
                    os.symlink(canary, os.path.join(state, rel))
                    plants[rel] = (canary, tree(canary))
            res, _out = boot.boot_in_namespace(box, disks)
            if res.rc == 0:
                problems.append(f"{', '.join(rels)}: the boot succeeded through planted links")
            for rel in rels:
                inside = p(box, STATE + "/" + rel)
                if not failures_naming(res, inside + " is a symbolic link"):
                    problems.append(f"{rel}: no failure names {inside} as a symbolic link\n" + res.stdout[-3000:])
        for rel, (canary, before) in plants.items():
            if tree(canary) != before:
                problems.append(f"{rel}: the canary changed: {before} -> {tree(canary)}")
        figures.add("planted symlinks are not followed", "links refused, canary unchanged",
                    len(plants) - len({pr.split(":")[0] for pr in problems}), len(plants), "runs")
        assert not problems, "\n".join(problems)
    finally:
        swapoff_disks(disks)
