"""Self-tests of the fixture kit (lwkit): loop disks, helpers, decoys, teardown, the Ansible runner.

The teardown tests run a tiny pytest session in a subprocess that sets up loop disks (partitions,
an active swap area, mounts, a read-only flag) and then fails, is sent SIGTERM, or is interrupted;
afterwards nothing of it may remain: no loop attached to its images, no partitions, no swap, no
mount, no image file, no read-only flag left on the loop device.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap

import pytest

from lwkit import loop as kitloop
from lwkit.boot import unplug
from lwkit.decoys import DECOYS, DECOYS_BY_NAME
from lwkit.disk import (
    MAGIC,
    blkid_probe,
    gpt_remnants,
    has_header,
    is_blockdev,
    partitions_of,
    read_bytes,
    sha256_of,
    signatures_of,
    write_header,
)
from lwkit.sysutil import read_mountinfo, read_swaps, run

KIT_PARENT = os.path.dirname(os.path.abspath(__file__))


def test_loopdev_attaches_a_sparse_image(loopdev):
    disk = loopdev("64M", name="basic")
    assert is_blockdev(disk.path)
    assert disk.path.startswith("/dev/loop")
    assert os.path.getsize(disk.image) == 64 << 20
    assert os.stat(disk.image).st_blocks * 512 < 1 << 20, "image is not sparse"
    back = run(["losetup", "-n", "-O", "BACK-FILE", disk.path]).stdout.strip()
    assert os.path.realpath(back) == os.path.realpath(disk.image)
    assert run(["blockdev", "--getsize64", disk.path]).stdout.strip() == str(64 << 20)


def test_header_and_hash_helpers(loopdev):
    disk = loopdev("32M")
    empty = sha256_of(disk)
    assert not has_header(disk)
    write_header(disk)
    assert has_header(disk) and has_header(disk, newline=True) and not has_header(disk, newline=False)
    assert read_bytes(disk, 0, 28) == MAGIC + b"\n"
    h1 = sha256_of(disk)
    assert h1 != empty
    # the same content hash through the device and through the image file
    assert sha256_of(disk.path) == h1 == sha256_of(disk.image)
    # a hole and written zeros hash alike: content, not allocation
    other = loopdev("32M")
    write_header(other, data=bytes(4 << 20), offset=8 << 20)
    assert sha256_of(other) == empty
    # one changed byte in the last sector changes it
    write_header(disk, data=b"x", offset=(32 << 20) - 1)
    assert sha256_of(disk) != h1
    write_header(disk, newline=False, offset=0, data=b"\0" * 28)
    write_header(disk, newline=False)
    assert has_header(disk, newline=False)


def test_partitions_helper_and_rescan(loopdev):
    disk = loopdev("64M")
    assert partitions_of(disk) == []
    run(["sfdisk", "--quiet", "--no-reread", "--no-tell-kernel", disk.path],
        input="label: gpt\nsize=8M, name=one\nname=two\n")
    parts = partitions_of(disk)
    assert [p["name"] for p in parts] == ["one", "two"]
    nodes = disk.rescan()
    assert nodes == [disk.part(1), disk.part(2)]
    assert all(is_blockdev(n) for n in nodes)
    assert blkid_probe(disk)["PTTYPE"] == "gpt"
    assert {s["type"] for s in signatures_of(disk)} >= {"gpt", "PMBR"}
    assert len(gpt_remnants(disk)) == 2  # primary header (LBA 1) and backup (last LBA)


@pytest.mark.parametrize("name", [d.name for d in DECOYS])
def test_decoy_is_planted_for_real(decoy, name):
    disk, what = decoy(name)
    assert what
    assert not has_header(disk), "a decoy must not carry the exact magic header at byte 0"
    spec = DECOYS_BY_NAME[name]
    if spec.kind == "signature":
        assert signatures_of(disk), f"{name}: wipefs finds no signature"
    else:
        assert signatures_of(disk) == [], f"{name}: {signatures_of(disk)}"
    if spec.kind == "blank":
        assert read_bytes(disk, 0, 1 << 20) == bytes(1 << 20)
    else:
        assert read_bytes(disk, 0, 1 << 20) != bytes(1 << 20)


def test_sandbox_root_is_a_directory_and_mounts_under_it_are_undone(sandbox_root, lw_workdir):
    assert os.path.isdir(os.path.join(sandbox_root, "run"))
    target = os.path.join(sandbox_root, "mnt", "x")
    os.makedirs(target)
    run(["mount", "-t", "tmpfs", "lwkit-selftest", target])
    kitloop.teardown_disks([], extra_roots=[sandbox_root])
    assert not any(m.mount_point == target for m in read_mountinfo())


# --------------------------------------------------------------------------------------------
# teardown, proven from the outside


INNER_TEST = textwrap.dedent(
    r'''
    import json, os, signal, subprocess
    from lwkit.disk import write_header

    def run(*argv, **kw):
        return subprocess.run(list(argv), check=True, capture_output=True, text=True, **kw)

    def test_inner(loopdev, lw_workdir):
        a = loopdev("96M", name="parted")
        b = loopdev("64M", name="plain-ext4")
        c = loopdev("32M", name="readonly")
        run("sfdisk", "--quiet", "--no-reread", "--no-tell-kernel", a.path,
            input="label: gpt\nsize=16M, name=sw\nname=fs\n")
        a.rescan()
        run("mkswap", a.part(1))
        run("swapon", a.part(1))
        run("mkfs.ext4", "-q", "-F", a.part(2))
        run("mkfs.ext4", "-q", "-F", b.path)
        for dev, sub in ((a.part(2), "a2"), (b.path, "b")):
            os.makedirs(os.path.join(lw_workdir, sub))
            run("mount", dev, os.path.join(lw_workdir, sub))
        # a mount under the test dir that no loop backs, stacked on one that a loop backs
        os.makedirs(os.path.join(lw_workdir, "b", "inner"))
        run("mount", "-t", "tmpfs", "lwkit-inner", os.path.join(lw_workdir, "b", "inner"))
        run("blockdev", "--setro", c.path)
        with open(os.environ["LWKIT_SELFTEST_STATE"], "w") as fh:
            json.dump({"disks": [[d.path, d.image] for d in (a, b, c)], "workdir": lw_workdir,
                       "parts": [a.part(1), a.part(2)]}, fh)
        mode = os.environ["LWKIT_SELFTEST_MODE"]
        if mode == "fail":
            assert False, "failing on purpose"
        elif mode == "sigterm":
            os.kill(os.getpid(), signal.SIGTERM)
        elif mode == "interrupt":
            raise KeyboardInterrupt
    '''
)


def _run_inner(tmp_path, mode):
    test_file = tmp_path / "test_inner_kit.py"
    test_file.write_text(INNER_TEST)
    state = tmp_path / "state.json"
    env = dict(os.environ, PYTHONPATH=KIT_PARENT, LWKIT_SELFTEST_MODE=mode, LWKIT_SELFTEST_STATE=str(state))
    proc = subprocess.run(
        check=False,
        args=[sys.executable, "-m", "pytest", "-p", "lwkit.plugin", "-p", "no:cacheprovider", "-q", str(test_file)],
        capture_output=True, text=True, env=env, cwd=str(tmp_path), timeout=300,
    )
    assert state.exists(), f"inner test did not get to its setup:\n{proc.stdout}\n{proc.stderr}"
    return proc, json.loads(state.read_text())


def _assert_nothing_left(state, proc):
    where = f"\ninner stdout:\n{proc.stdout[-3000:]}\ninner stderr:\n{proc.stderr[-3000:]}"
    attached = run(["losetup", "-a", "-n", "-O", "NAME,BACK-FILE"]).stdout
    for path, image in state["disks"]:
        assert image not in attached, f"{path} still attached to {image}:\n{attached}{where}"
        assert not os.path.exists(image), f"image {image} left behind{where}"
        kname = os.path.basename(path)
        leftover = [p for p in os.listdir(f"/sys/block/{kname}") if p.startswith(kname + "p")] \
            if os.path.isdir(f"/sys/block/{kname}") else []
        assert leftover == [], f"partitions of {path} still in the kernel: {leftover}{where}"
        if os.path.exists(path):
            assert run(["blockdev", "--getro", path]).stdout.strip() == "0", f"{path} left read-only{where}"
    swaps = read_swaps()
    for part in state["parts"]:
        assert part not in swaps, f"swap {part} still active{where}"
    mounts = [m for m in read_mountinfo() if m.mount_point.startswith(state["workdir"])
              or m.source in state["parts"] or m.source in [p for p, _image in state["disks"]]]
    assert mounts == [], f"stale mounts: {mounts}{where}"


def test_teardown_after_a_failing_test(tmp_path):
    proc, state = _run_inner(tmp_path, "fail")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "failing on purpose" in proc.stdout
    _assert_nothing_left(state, proc)


def test_teardown_on_sigterm(tmp_path):
    proc, state = _run_inner(tmp_path, "sigterm")
    assert proc.returncode == -signal.SIGTERM, (proc.returncode, proc.stdout, proc.stderr)
    _assert_nothing_left(state, proc)


def test_teardown_on_keyboard_interrupt(tmp_path):
    proc, state = _run_inner(tmp_path, "interrupt")
    assert proc.returncode != 0
    _assert_nothing_left(state, proc)


def test_teardown_leaves_foreign_loops_alone(tmp_path, loopdev):
    """A loop the kit did not create survives the kit's teardown, even one that holds our partitions' names."""
    image = tmp_path / "foreign.img"
    with open(image, "wb") as fh:
        fh.truncate(16 << 20)
    foreign = run(["losetup", "-f", "--show", str(image)]).stdout.strip()
    try:
        proc, state = _run_inner(tmp_path, "fail")
        _assert_nothing_left(state, proc)
        back = run(["losetup", "-n", "-O", "BACK-FILE", foreign]).stdout.strip()
        assert os.path.realpath(back) == os.path.realpath(image)
        mine = loopdev("16M")
        # The second net, called by hand: still only the kit's loops. It keeps the session dir, which the tests
        # after this one (and the session's Ansible runner, already built when an earlier file used it) still use.
        kitloop.teardown_everything(remove_roots=False)
        assert run(["losetup", "-n", "-O", "BACK-FILE", foreign]).stdout.strip() == back
        assert not os.path.exists(mine.image)
    finally:
        run(["losetup", "-d", foreign], check=False)


def test_teardown_of_a_pulled_disk_leaves_the_next_user_of_its_loop_alone(loopdev):
    """A pulled disk's loop number backs another disk by the time its test ends (another test's, under xdist):
    the teardown of the pulled disk must not take that disk's swap off, nor detach it."""
    pulled = loopdev("16M", name="pulled")
    other = loopdev("16M", name="other")
    unplug(pulled)
    pulled.path = other.path  # what losetup -f does when the freed number is the lowest
    run(["mkswap", other.path])
    run(["swapon", other.path])
    try:
        problems = kitloop.teardown_disks([pulled])
        assert other.path in read_swaps(), "the teardown of the pulled disk took the other disk's swap off"
        assert os.path.realpath(run(["losetup", "-n", "-O", "BACK-FILE", other.path]).stdout.strip()) == \
            os.path.realpath(other.image)
        # A pulled disk's loop number is anyone's to take: nothing to report.
        assert problems == [], problems
        assert any(disk is other for disk in kitloop.registered_disks()), "the other disk left the registry"
    finally:
        run(["swapoff", other.path], check=False)


# --------------------------------------------------------------------------------------------
# the Ansible runner


def test_ansible_runner_builds_installs_and_runs(ansible):
    assert os.path.isfile(ansible.tarball)
    assert os.path.isdir(ansible.installed_path())
    res = ansible.run_module("ansible.builtin.ping", {"data": "lwkit"})
    assert res.rc == 0, res.explain()
    assert res["ping"] == "lwkit"
    res = ansible.run_module("ansible.builtin.command", {"argv": ["false"]})
    assert res.rc != 0 and res.failed, res.explain()
    assert res["rc"] == 1
    pb = ansible.run_playbook(
        textwrap.dedent(
            """\
            - hosts: localhost
              connection: local
              gather_facts: false
              tasks:
                - name: echo
                  ansible.builtin.debug:
                    msg: "{{ greeting }}"
            """
        ),
        extravars={"greeting": "hello from lwkit"},
    )
    assert pb.rc == 0, pb.explain()
    assert [r["result"].get("msg") for r in pb.results if r["task"] == "echo"] == ["hello from lwkit"]
    assert pb.stats["localhost"]["failures"] == 0
