"""Hosts without Python: the enable role over the host's shell alone, and the raw_* actions, against localhost with
Python made unusable (ansible_python_interpreter=/nonexistent), on loop disks and decoys.

Outcomes are checked on the disks themselves: the header read back, content hashes of every disk that must not
change. The raw probe's verdicts are compared with the module's on every decoy the kit can make. raw_reboot reboots
only in VMs (scenario rawhost); here its refusal of the local connection is checked.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest

from lwkit import has_header, sha256_of, signatures_of
from lwkit.decoys import decoy_pool
from lwkit.fleet import Sandbox, summary_lines, task_result

pytestmark = [pytest.mark.needs_module("persistence_info"), pytest.mark.needs_module("raw_persistence_info")]

NO_PYTHON = {"ansible_python_interpreter": "/nonexistent"}
LOCAL = dict(NO_PYTHON, ansible_connection="local")


@pytest.fixture
def box(ansible, sandbox_root):
    return Sandbox(ansible, sandbox_root)


def ok(res):
    assert res.rc == 0, res.stdout[-6000:] + res.stderr[-3000:]
    return res


def failed(res, *needles):
    assert res.rc != 0, "expected the play to fail\n" + res.stdout[-6000:]
    text = res.stdout + res.stderr
    for needle in needles:
        assert needle in text, f"the failure does not say {needle!r}\n" + text[-6000:]
    return res


def line(res):
    lines = summary_lines(res)
    assert "localhost" in lines, res.stdout[-4000:]
    return lines["localhost"]


def hashes(disks):
    return {disk.path: sha256_of(disk) for disk in disks}


def ran(res, name_part):
    """Whether the role's task whose name contains name_part ran (not skipped) for localhost."""
    rec = task_result(res, name_part)
    return rec is not None and rec.get("event") != "skipped" and not rec["result"].get("skipped")


def raw_play(action, args, check=False):
    """A play that runs one raw_* action against localhost without Python, and keeps its result."""
    return (f"- hosts: localhost\n  gather_facts: false\n  tasks:\n"
            f"    - name: The action\n      {action}: {json.dumps(args)}\n      register: out\n"
            f"      check_mode: {str(check).lower()}\n")


def test_without_python_the_selector_marks_only_the_chosen_disk(box, loopdev, decoy):
    chosen, other = loopdev("128M", name="blank-a"), loopdev("128M", name="blank-b")
    ext4, _what = decoy("ext4")
    gpt, _what = decoy("gpt_partitions")
    untouched = [other, ext4, gpt]
    disks = [chosen] + untouched
    before = hashes(disks)
    select = {"count": 1, "min_size": "64M"}

    checked = ok(box.enable(disks, check=True, lightwhale_persistence_select=select, **NO_PYTHON))
    assert ran(checked, "Look at the host over its shell") and not ran(checked, "Look at the host - persistence")
    assert f"would mark {chosen.path}" in line(checked)
    assert hashes(disks) == before, "check mode wrote"

    marked = ok(box.enable(disks, lightwhale_persistence_select=select, **NO_PYTHON))
    assert ran(marked, "Mark the chosen disks with the magic header, over the host's shell")
    assert has_header(chosen, newline=True)
    assert hashes(untouched) == {disk.path: before[disk.path] for disk in untouched}, "another disk was written"
    assert marked.stats["localhost"]["changed"] == 1, marked.stats
    assert line(marked) == (f"localhost: none-yet, members 0, profile -; marked {chosen.path}; "
                            "persistent after the next boot (1 member(s), single/dup)")

    again = ok(box.enable(disks, lightwhale_persistence_select=select, **NO_PYTHON))
    assert again.stats["localhost"]["changed"] == 0, again.stats
    assert f"nothing to mark; waiting: {chosen.path}" in line(again)
    assert hashes(untouched) == {disk.path: before[disk.path] for disk in untouched}


def test_the_shell_probe_and_the_module_see_every_decoy_alike(box, loopdev):
    made = [disk for disk, _what in decoy_pool(loopdev).values()]
    assert len(made) >= 12, [disk.name for disk in made]
    devices = [disk.path for disk in made] + [loopdev("64M", name="blank").path]

    module = box.info(devices)
    assert module.rc == 0 and not module.failed, module.explain()
    raw = box.module("raw_persistence_info", devices=devices)
    assert raw.rc == 0 and not raw.failed, raw.explain()
    keys = ("device", "given", "size", "magic", "read_only", "partition_table", "partitions", "signatures", "in_use",
            "layout", "empty", "reasons", "name")
    seen = {disk["device"]: {key: disk[key] for key in keys} for disk in raw.result["disks"]}
    for disk in module.result["disks"]:
        assert seen[disk["device"]] == {key: disk[key] for key in keys}, disk["device"]
    for key in ("mode", "magic_disks", "magic_partitions", "empty_disks", "filesystem"):
        assert raw.result[key] == module.result[key], key
    # The module also surveys the partitions for a data filesystem, and reports those the kernel does not know.
    assert module.result["summary"].startswith(raw.result["summary"]), (raw.result["summary"], module.result["problems"])
    assert raw.result["probe"] == "raw"


def test_a_persistent_host_is_verified_over_its_shell(box, magic_disk, loopdev):
    disk = magic_disk("400M")
    spare = loopdev("400M", name="spare")
    box.boot([disk])
    before = sha256_of(spare)
    res = ok(box.enable([disk, spare], lightwhale_persistence_select={"count": "all", "min_size": "64M"},
                        lightwhale_persistence_verify=True, **NO_PYTHON))
    assert line(res) == f"localhost: persistent, members 1 ({disk.part(2)}), profile single/dup; left alone"
    assert ran(res, "Look at the host again over its shell")
    assert sha256_of(spare) == before and not has_header(spare)

    wrong = box.enable([disk, spare], lightwhale_persistence_verify=True,
                       lightwhale_persistence_expect_members=2, **NO_PYTHON)
    failed(wrong, "localhost: expected persistent with 2 member(s), found persistent; single/dup on")
    assert sha256_of(spare) == before


def test_force_over_the_shell_is_explicit_only(box, decoy):
    ext4, _what = decoy("ext4")
    before = sha256_of(ext4)
    refused = box.enable([ext4], lightwhale_persistence_disks=[ext4.path], **NO_PYTHON)
    failed(refused, ext4.path, "holds ext4 signature", "force: true wipes it")
    assert sha256_of(ext4) == before

    checked = ok(box.enable([ext4], check=True, lightwhale_persistence_disks=[ext4.path],
                            lightwhale_persistence_force=True, **NO_PYTHON))
    assert f"would mark {ext4.path}" in line(checked)
    assert sha256_of(ext4) == before, "check mode with force wrote"

    forced = ok(box.enable([ext4], lightwhale_persistence_disks=[ext4.path], lightwhale_persistence_force=True,
                           **NO_PYTHON))
    assert has_header(ext4) and "ext4" not in [sig.get("type") for sig in signatures_of(ext4)]
    assert f"marked {ext4.path}" in line(forced)


@pytest.mark.parametrize("value, shell", [("true", True), (True, True), ("false", False), ("auto", False)])
def test_the_choice_with_python_present(box, loopdev, value, shell):
    disk = loopdev("128M", name="blank")
    res = ok(box.enable([disk], check=True, lightwhale_persistence_disks=[disk.path],
                        lightwhale_persistence_raw=value))
    assert ran(res, "Look at the host over its shell") is shell
    assert ran(res, "Look at the host - persistence") is not shell
    assert f"would mark {disk.path}" in line(res)


def test_modules_forced_on_a_host_without_python_fail_and_write_nothing(box, loopdev):
    disk = loopdev("128M", name="blank")
    before = sha256_of(disk)
    res = box.enable([disk], lightwhale_persistence_disks=[disk.path], lightwhale_persistence_raw="false", **NO_PYTHON)
    assert res.rc != 0
    assert sha256_of(disk) == before


def test_a_bad_choice_is_refused(box, loopdev):
    disk = loopdev("128M", name="blank")
    failed(box.enable([disk], lightwhale_persistence_disks=[disk.path], lightwhale_persistence_raw="maybe"),
           "lightwhale_persistence_raw")
    assert not has_header(disk)


def test_raw_magic_disk_twice_then_refusals(ansible, loopdev, decoy):
    blank = loopdev("64M", name="blank")
    ext4, _what = decoy("ext4")
    first = ansible.run_playbook(raw_play("lightwhale.persistence.raw_magic_disk", {"devices": [blank.path]}),
                                 extravars=LOCAL)
    assert first.rc == 0 and first.stats["localhost"]["changed"] == 1, first.stdout[-3000:]
    assert has_header(blank, newline=True)
    second = ansible.run_playbook(raw_play("lightwhale.persistence.raw_magic_disk", {"devices": [blank.path]}),
                                  extravars=LOCAL)
    assert second.rc == 0 and second.stats["localhost"]["changed"] == 0, second.stdout[-3000:]

    before = sha256_of(ext4)
    for args, needle in (({"devices": [ext4.path]}, f"{ext4.path}: holds ext4 signature"),
                         ({"devices": []}, "never guessed"),
                         ({"devices": ["/dev/lw-no-such-disk"]}, "/dev/lw-no-such-disk: does not exist"),
                         ({"devices": ["relative"]}, "relative: not an absolute path")):
        res = ansible.run_playbook(raw_play("lightwhale.persistence.raw_magic_disk", args), extravars=LOCAL)
        assert res.rc != 0 and needle in res.stdout + res.stderr, (args, res.stdout[-3000:])
    assert sha256_of(ext4) == before


def test_the_marking_script_refuses_a_disk_that_changed_since_the_probe(ansible, loopdev, decoy):
    """The script's own checks, run as the action runs it: a disk that is no longer blank is refused unwritten."""
    _raw_probe, _raw_mark = _module_utils(ansible)
    ext4, _what = decoy("ext4")
    tail = loopdev("64M", name="tail")
    with open(tail.path, "r+b") as handle:
        handle.seek(64 * 1024 * 1024 - 3)
        handle.write(b"x")
    for disk, reason in ((ext4, "holds a signature since the probe"), (tail, "non-zero data at sector")):
        before = sha256_of(disk)
        out = subprocess.run(_raw_mark.command(disk.path, False), shell=True, capture_output=True, text=True,
                             check=True).stdout
        assert out.startswith("::lw:: refused") and reason in out, out
        assert sha256_of(disk) == before


def test_raw_reboot_refuses_the_local_connection(ansible):
    res = ansible.run_playbook(raw_play("lightwhale.persistence.raw_reboot", {}), extravars=LOCAL)
    assert res.rc != 0 and "would reboot the control node" in res.stdout + res.stderr, res.stdout[-3000:]


BUSYBOX_APPLETS = ("sh", "cat", "cut", "dd", "grep", "head", "ls", "od", "readlink", "sync", "tr", "wc", "tail")


@pytest.fixture
def busybox_path(lw_workdir):
    """A PATH of BusyBox applets only, plus the util-linux programs the scripts need (BusyBox has none of them)."""
    busybox = shutil.which("busybox")
    if busybox is None:
        pytest.fail("busybox is not installed (scripts/setup installs it)")
    bindir = os.path.join(lw_workdir, "busybox-bin")
    os.makedirs(bindir)
    for applet in BUSYBOX_APPLETS:
        os.symlink(busybox, os.path.join(bindir, applet))
    for tool in ("wipefs", "sfdisk", "partx"):
        os.symlink(shutil.which(tool), os.path.join(bindir, tool))
    return bindir


def _module_utils(ansible):
    if ansible.collections_dir not in sys.path:
        sys.path.insert(0, ansible.collections_dir)
    from ansible_collections.lightwhale.persistence.plugins.module_utils import _raw_mark, _raw_probe
    return _raw_probe, _raw_mark


def test_the_scripts_run_under_busybox_as_under_dash(ansible, busybox_path, loopdev, sandbox_root):
    _raw_probe, _raw_mark = _module_utils(ansible)
    made = [disk for disk, _what in decoy_pool(loopdev).values()]
    blank = loopdev("64M", name="blank")
    devices = [disk.path for disk in made] + [blank.path]
    args = ["lightwhale-persistence", sandbox_root] + devices
    dash = subprocess.run(["/bin/sh", "-c", _raw_probe.PROBE_SCRIPT] + args, capture_output=True, text=True, check=True)
    busybox = subprocess.run([os.path.join(busybox_path, "sh"), "-c", _raw_probe.PROBE_SCRIPT] + args,
                             capture_output=True, text=True, check=True, env={"PATH": busybox_path})
    seen = [_raw_probe.facts(_raw_probe.Probe(out.stdout), sandbox_root) for out in (dash, busybox)]
    assert seen[0]["disks"] == seen[1]["disks"]
    assert sorted(disk["device"] for disk in seen[1]["empty_disks"]) == sorted(
        [blank.path] + [disk.path for disk in made if disk.name == "decoy-zeros"])

    ext4 = next(disk for disk in made if "ext4" in disk.name)
    before = sha256_of(ext4)
    for disk, how, expected in ((blank, "blank", "::lw:: written"), (blank, "blank", "::lw:: already"),
                                (ext4, "blank", "::lw:: refused holds a signature since the probe"),
                                (ext4, "wipe", "::lw:: written")):
        out = subprocess.run([os.path.join(busybox_path, "sh"), "-c", _raw_mark.MARK_SCRIPT, "lightwhale-persistence",
                              disk.path, how, "lightwhale-please-format-me"],
                             capture_output=True, text=True, check=True, env={"PATH": busybox_path}).stdout
        assert out.startswith(expected), (disk.name, how, out)
        if how == "blank" and disk is ext4:
            assert sha256_of(ext4) == before
    assert has_header(blank, newline=True) and has_header(ext4, newline=True)
    assert "ext4" not in [sig.get("type") for sig in signatures_of(ext4)]


def test_force_never_touches_a_member_of_the_mounted_data_filesystem(box, magic_disk):
    """mountinfo names one member of a multi-disk btrfs; the others are refused as members, as the module's exclusive
    open refuses them."""
    first, second = magic_disk("400M", name="m1"), magic_disk("400M", name="m2")
    box.boot([first, second], swap=False)
    before = sha256_of(second)
    info = box.module("raw_persistence_info", devices=[first.path, second.path])
    reasons = {disk["device"]: disk["in_use"] for disk in info.result["disks"]}
    assert reasons[second.path] and "member of the mounted btrfs" in reasons[second.path][0], reasons
    for res in (box.ansible.run_module("raw_magic_disk", dict(devices=[second.path], force=True)),
                box.module("magic_disk", devices=[second.path], force=True, state="present")):
        assert res.rc != 0 and second.path in res.msg and "in use" in res.msg, res.explain()
    # The marking script's own check, had the disk become a member after the probe.
    _raw_probe, _raw_mark = _module_utils(box.ansible)
    out = subprocess.run(_raw_mark.command(second.path, True), shell=True, capture_output=True, text=True,
                         check=True).stdout
    assert out.startswith("::lw:: refused in use:") and "member of a mounted btrfs" in out, out
    assert sha256_of(second) == before
