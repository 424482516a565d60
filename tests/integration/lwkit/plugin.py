"""pytest plugin of the kit: fixtures and hooks. Loaded by tests/integration/conftest.py
(`pytest_plugins = ["lwkit.plugin"]`), or with `pytest -p lwkit.plugin` (PYTHONPATH=tests/integration).

Fixtures
- lw_session_dir   (session)  /tmp/lwtest-<random>/, removed at the end (after unmounting under it)
- lw_workdir       (function) a fresh dir per test under lw_session_dir
- loopdev          (function) factory: loopdev(size="512M", name=None) -> LoopDisk; torn down always
- magic_disk       (function) factory: magic_disk(size="512M", newline=True, name=None) -> LoopDisk
- decoy            (function) factory: decoy(name) -> (LoopDisk, description); skips with the reason
                              when the decoy cannot be made for real here
- sandbox_root     (function) a temp dir for the modules' `root` option (with run/ inside);
                              anything mounted under it is unmounted at teardown
- ansible          (session)  AnsibleRunner: collection built + installed once per process (each xdist
                              worker has its own); run_module(),
                              run_playbook()
- boot             (function) lwkit.boot.BootRunner(ansible): the boot playbook as the boot hook runs it
- box              (function) the real path of sandbox_root with the sample image (lwkit.overlay.make_image: /etc,
                              /var, /home with real owners and modes), for the boot tests; a test module that
                              needs another sandbox defines its own `box`
- magic_disks      (function) factory: magic_disks(count, size="512M") -> [LoopDisk] carrying the header
                              (magic0, magic1, ...), as an operator marks them with dd
Hooks: the figures the reliability suite records (lwkit.figures) are printed at the end of the run (under
pytest-xdist, each worker hands its figures to the controller, which adds them up).
Markers: slow (long-running tests; deselect with -m "not slow").
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile

import pytest

from . import figures as _figures
from . import loop as _loop
from .ansible import AnsibleRunner
from .boot import BootRunner
from .decoys import DECOYS_BY_NAME, DecoyUnavailable
from .disk import write_header
from .overlay import make_image
from .sysutil import ensure_private_mount_ns, in_private_mount_ns, read_mountinfo

REPO_ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))

_ns_note = "not checked"


def pytest_configure(config):
    global _ns_note
    config.addinivalue_line("markers", "slow: a slow test (deselect with -m 'not slow')")
    config.addinivalue_line("markers", "needs_module(name): skip unless plugins/modules/<name>.py exists")
    _loop.install_safety_net()
    if os.geteuid() == 0 and not os.environ.get("LWKIT_NO_UNSHARE"):
        _ns_note = ensure_private_mount_ns()
    else:
        _ns_note = "private" if in_private_mount_ns() else "shared with PID 1 (not root or LWKIT_NO_UNSHARE)"


def pytest_report_header(config):
    return [f"lwkit: mount namespace: {_ns_note}"]


def pytest_collection_modifyitems(config, items):
    if os.geteuid() != 0:
        skip = pytest.mark.skip(reason="loop devices need root")
        for item in items:
            if "loopdev" in getattr(item, "fixturenames", ()) or "ansible" in getattr(item, "fixturenames", ()):
                item.add_marker(skip)
    for item in items:
        for mark in item.iter_markers("needs_module"):
            name = mark.args[0]
            if not os.path.isfile(os.path.join(REPO_ROOT, "plugins", "modules", f"{name}.py")):
                item.add_marker(pytest.mark.skip(reason=f"plugins/modules/{name}.py does not exist yet"))


def pytest_sessionfinish(session, exitstatus):
    _loop.teardown_everything()
    # A pytest-xdist worker hands its figures to the controller (pytest_testnodedown below).
    if hasattr(session.config, "workeroutput"):
        session.config.workeroutput["lw_figures"] = json.dumps(_figures.recorded())


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node, error):
    """pytest-xdist, on the controller: a worker ended; its figures join the controller's."""
    _figures.merge(json.loads(getattr(node, "workeroutput", {}).get("lw_figures", "[]")))


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    rows = _figures.recorded()
    if not rows:
        return
    path = _figures.write()
    for line in _figures.render(rows):
        terminalreporter.write_line(line)
    terminalreporter.write_line(f"  (written to {path})")


def _safe_name(name, limit=60):
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name)[:limit].strip("_") or "t"


@pytest.fixture(scope="session")
def lw_session_dir():
    d = tempfile.mkdtemp(prefix="lwtest-", dir="/tmp")
    _loop.register_temp_root(d, remove=True)
    try:
        yield d
    finally:
        _loop.teardown_disks([x for x in _loop.registered_disks() if x.workdir.startswith(d)], extra_roots=[d])
        _loop.unregister_temp_root(d)
        if not any((m.mount_point + "/").startswith(d + "/") for m in read_mountinfo()):
            shutil.rmtree(d, ignore_errors=True)


@pytest.fixture
def lw_workdir(lw_session_dir, request):
    d = tempfile.mkdtemp(prefix=_safe_name(request.node.name) + "-", dir=lw_session_dir)
    yield d


@pytest.fixture
def loopdev(lw_workdir):
    """Factory: loopdev(size='512M', name=None) -> LoopDisk (.path, .image, .size, .name)."""
    created = []
    counter = [0]

    def make_disk(size="512M", name=None):
        counter[0] += 1
        name = name or f"disk{counter[0]}"
        image = os.path.join(lw_workdir, f"{_safe_name(name, 40)}-{counter[0]}.img")
        disk = _loop.attach(image, size, name=name, workdir=lw_workdir)
        created.append(disk)
        return disk

    make_disk.created = created
    try:
        yield make_disk
    finally:
        problems = _loop.teardown_disks(created, extra_roots=[lw_workdir])
        if problems:
            # a teardown that could not clean up must be loud, but must not hide the test's result
            import warnings

            warnings.warn("lwkit teardown: " + "; ".join(problems))


@pytest.fixture
def magic_disk(loopdev):
    """Factory: magic_disk(size='512M', newline=True, name=None) -> LoopDisk with the header."""

    def make(size="512M", newline=True, name=None):
        disk = loopdev(size, name=name or "magic")
        write_header(disk, newline=newline)
        return disk

    return make


@pytest.fixture
def decoy(loopdev):
    """Factory: decoy(name, size=None) -> (LoopDisk, description). Skips (with the reason) when
    the decoy cannot be made for real on this host."""

    def make(name, size=None):
        spec = DECOYS_BY_NAME[name]
        disk = loopdev(size or spec.size, name=f"decoy-{name}")
        try:
            what = spec.plant(disk)
        except DecoyUnavailable as exc:
            pytest.skip(f"decoy {name} cannot be made here: {exc}")
        return disk, what

    return make


@pytest.fixture
def sandbox_root(lw_workdir):
    root = os.path.join(lw_workdir, "root")
    os.makedirs(os.path.join(root, "run"), exist_ok=True)
    with _loop.temp_root(root):
        yield root


@pytest.fixture(scope="session")
def ansible(lw_session_dir):
    workdir = os.path.join(lw_session_dir, "ansible")
    os.makedirs(workdir, exist_ok=True)
    runner = AnsibleRunner(REPO_ROOT, workdir)
    try:
        runner.build_and_install()
    except RuntimeError as exc:
        pytest.fail(str(exc), pytrace=False)
    return runner


@pytest.fixture
def magic_disks(magic_disk):
    """Factory: magic_disks(count, size='512M') -> [LoopDisk] carrying the header, as an operator marks them with dd."""

    def make(count, size="512M"):
        return [magic_disk(size, name=f"magic{i}") for i in range(count)]

    return make


@pytest.fixture
def boot(ansible):
    return BootRunner(ansible)


@pytest.fixture
def box(sandbox_root):
    """The sandbox root with the sample image (/etc, /var, /home with real owners and modes), by its real path."""
    make_image(sandbox_root)
    return os.path.realpath(sandbox_root)
