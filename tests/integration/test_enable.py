"""The role and playbook lightwhale.persistence.enable against localhost with a sandbox root and loop disks.

The playbook runs as an operator runs it (`import_playbook: lightwhale.persistence.enable`), with the role's
passthrough variables lightwhale_persistence_root and _devices pointing at the test's sandbox and loop disks. A
"reboot" is the boot sequence's steps 2-6 run on the sandbox (magic_disk partitioned, lw_datafs mounted); the
real reboot task runs only in VMs (ansible.builtin.reboot refuses a local connection). Outcomes are checked on the
disks themselves: the header read back, content hashes of every disk that must not change.
"""

from __future__ import annotations

import os
import re
import subprocess

import pytest
import yaml

from lwkit import has_header, sha256_of, signatures_of
from lwkit.decoys import decoy_pool
from lwkit.fleet import Sandbox, forget_and_detach, summary_lines, task_result

pytestmark = [pytest.mark.needs_module("persistence_info"), pytest.mark.needs_module("magic_disk")]


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


def line(res, host="localhost"):
    lines = summary_lines(res)
    assert host in lines, res.stdout[-4000:]
    return lines[host]


def hashes(disks):
    return {disk.path: sha256_of(disk) for disk in disks}


def test_explicit_list_check_mode_then_marks_then_waits(box, loopdev):
    first, second = loopdev("400M", name="a"), loopdev("400M", name="b")
    before = hashes([first, second])
    checked = ok(box.enable([first, second], check=True, lightwhale_persistence_disks=[first.path, second.path]))
    assert line(checked) == (f"localhost: none-yet, members 0, profile -; would mark {first.path},{second.path}; "
                             "persistent after the next boot (2 member(s), raid1/raid1)")
    assert hashes([first, second]) == before, "check mode wrote"

    marked = ok(box.enable([first, second], lightwhale_persistence_disks=[first.path, second.path]))
    assert has_header(first, newline=True) and has_header(second, newline=True)
    assert marked.stats["localhost"]["changed"] == 1, marked.stats
    assert f"marked {first.path},{second.path}" in line(marked)

    again = ok(box.enable([first, second], lightwhale_persistence_disks=[first.path, second.path]))
    assert again.stats["localhost"]["changed"] == 0, again.stats
    assert f"nothing to mark; waiting: {first.path},{second.path}" in line(again)


def test_the_selector_skips_every_disk_that_holds_data(box, loopdev):
    pool = decoy_pool(loopdev)
    assert len(pool) >= 12, sorted(pool)
    blank_a, blank_b = loopdev("128M", name="blank-a"), loopdev("128M", name="blank-b")
    small = loopdev("32M", name="small")
    data_disks = [disk for name, (disk, _what) in pool.items() if name != "zeros"]
    everything = data_disks + [pool["zeros"][0], blank_a, blank_b, small]
    before = hashes(data_disks + [small])

    res = ok(box.enable(everything, lightwhale_persistence_select={"count": "all", "min_size": "64M"}))
    marked = sorted(disk.path for disk in everything if has_header(disk))
    assert marked == sorted([pool["zeros"][0].path, blank_a.path, blank_b.path]), line(res)
    assert hashes(data_disks + [small]) == before, "the selector wrote to a disk with data (or a small one)"
    plan = task_result(res, "Decide")["result"]["ansible_facts"]["__lightwhale_persistence_plan"]
    passed = {item["device"]: item["reason"] for item in plan["passed_over"]}
    for disk in data_disks:
        assert passed[disk.path].startswith("not empty"), (disk.name, passed.get(disk.path))
    assert "smaller" in passed[small.path]


def test_the_selector_with_too_few_empty_disks_marks_nothing(box, loopdev, decoy):
    blank_a, blank_b = loopdev("128M", name="blank-a"), loopdev("128M", name="blank-b")
    ext4, _what = decoy("ext4")
    before = hashes([blank_a, blank_b, ext4])
    res = box.enable([blank_a, blank_b, ext4], lightwhale_persistence_select={"count": 3, "min_size": "64M"})
    failed(res, "the selector wants 3 disk(s), but 2 empty disk(s) match", "ext4")
    assert hashes([blank_a, blank_b, ext4]) == before


def test_force_is_per_host_and_explicit(box, decoy):
    ext4, _what = decoy("ext4")
    before = sha256_of(ext4)
    refused = box.enable([ext4], lightwhale_persistence_disks=[ext4.path])
    failed(refused, ext4.path, "force: true wipes it")
    assert sha256_of(ext4) == before

    # The selector never forces: the ext4 disk is not even a candidate.
    ignored = box.enable([ext4], lightwhale_persistence_select={"count": 1, "min_size": 0},
                         lightwhale_persistence_force=True)
    failed(ignored, "but 0 empty disk(s) match", "holds ext4 signature")
    assert sha256_of(ext4) == before

    checked = ok(box.enable([ext4], check=True, lightwhale_persistence_disks=[ext4.path],
                            lightwhale_persistence_force=True))
    assert f"would mark {ext4.path}" in line(checked)
    assert sha256_of(ext4) == before, "check mode with force wrote"

    forced = ok(box.enable([ext4], lightwhale_persistence_disks=[ext4.path], lightwhale_persistence_force=True))
    assert has_header(ext4) and "ext4" not in [sig.get("type") for sig in signatures_of(ext4)]
    assert f"marked {ext4.path}" in line(forced)


def test_an_audit_in_check_mode_fails_a_host_that_is_not_persistent(box, loopdev):
    blank = loopdev("128M", name="blank")
    before = sha256_of(blank)
    res = box.enable([blank], check=True, lightwhale_persistence_select={"count": 1, "min_size": "64M"},
                     lightwhale_persistence_verify=True)
    failed(res, "localhost: expected persistent with 1 member(s), found none-yet")
    assert sha256_of(blank) == before


def test_no_choice_fails_the_host_and_writes_nothing(box, loopdev):
    blank = loopdev("128M", name="blank")
    before = sha256_of(blank)
    failed(box.enable([blank]), "no disks chosen")
    assert sha256_of(blank) == before


def test_already_persistent_host_is_left_alone_and_verified(box, magic_disk, loopdev):
    disk = magic_disk("400M")
    spare = loopdev("400M", name="spare")
    box.boot([disk])
    before = sha256_of(spare)
    res = ok(box.enable([disk, spare], lightwhale_persistence_select={"count": "all", "min_size": "64M"},
                        lightwhale_persistence_verify=True))
    assert line(res) == f"localhost: persistent, members 1 ({disk.part(2)}), profile single/dup; left alone"
    assert sha256_of(spare) == before and not has_header(spare)
    assert res.stats["localhost"]["changed"] == 0

    wrong = box.enable([disk, spare], lightwhale_persistence_verify=True,
                       lightwhale_persistence_expect_members=2)
    failed(wrong, "localhost: expected persistent with 2 member(s), found persistent; single/dup on")
    assert sha256_of(spare) == before


def test_marked_disks_come_back_persistent_or_the_host_fails(box, loopdev):
    first, second = loopdev("400M", name="a"), loopdev("400M", name="b")
    ok(box.enable([first, second], lightwhale_persistence_select={"count": 2, "min_size": "64M"}))
    assert has_header(first) and has_header(second)

    # Verification before the reboot: the host is not persistent yet.
    failed(box.enable([first, second], lightwhale_persistence_select={"count": 2, "min_size": "64M"},
                      lightwhale_persistence_verify=True),
           "expected persistent with 2 member(s), found none-yet", "2 magic disk(s) waiting")

    box.boot([first, second])   # what the reboot does
    res = ok(box.enable([first, second], lightwhale_persistence_select={"count": 2, "min_size": "64M"},
                        lightwhale_persistence_verify=True, lightwhale_persistence_expect_members=2))
    assert line(res) == (f"localhost: persistent, members 2 ({first.part(2)},{second.part(2)}), profile raid1/raid1; "
                         "left alone")

    # A member lost: the host comes back degraded, and verification says so.
    box.ok("lw_datafs", devices=[first, second], state="unmounted")
    forget_and_detach(second)
    box.ok("lw_datafs", devices=[first], state="mounted")
    failed(box.enable([first], lightwhale_persistence_select={"count": 2}, lightwhale_persistence_verify=True),
           "expected persistent with 2 member(s), found degraded", "missing devid 2")


def _inventory(path, hosts):
    """A YAML inventory of local 'hosts', each with its own sandbox root, disks and variables."""

    with open(path, "w", encoding="utf-8") as handle:
        yaml.safe_dump({"all": {"hosts": hosts}}, handle)
    return path


def test_hosts_of_an_inventory_in_waves_with_a_failure_budget(ansible, lw_workdir, loopdev):
    roots, hosts = {}, {}
    disks = {name: [loopdev("128M", name=f"{name}-{index}") for index in range(count)]
             for name, count in (("web1", 1), ("web2", 2), ("db1", 1))}
    for name, own in disks.items():
        roots[name] = os.path.join(lw_workdir, name)
        os.makedirs(os.path.join(roots[name], "run"))
        hosts[name] = dict(ansible_connection="local", ansible_python_interpreter=ansible.python,
                           lightwhale_persistence_root=roots[name],
                           lightwhale_persistence_devices=[disk.path for disk in own],
                           lightwhale_persistence_select={"count": "all", "min_size": "64M"})
    # db1 has an explicit list naming a disk that is not its own empty disk: its play fails.
    hosts["db1"]["lightwhale_persistence_disks"] = ["/dev/null"]
    inventory = _inventory(os.path.join(lw_workdir, "inventory.yml"), hosts)
    play = "- name: The collection's enable playbook\n  ansible.builtin.import_playbook: lightwhale.persistence.enable\n"

    checked = ansible.run_playbook(play, inventory=inventory, check=True,
                                   extravars={"lightwhale_persistence_serial": 1,
                                              "lightwhale_persistence_max_fail_percentage": 0})
    assert checked.rc != 0
    lines = summary_lines(checked)
    # Waves of one host in inventory order; db1 fails first, and the budget of 0 stops the rollout there.
    assert "db1" not in lines and lines == {}, checked.stdout[-3000:]

    res = ansible.run_playbook(play, inventory=inventory, limit="web1,web2",
                               extravars={"lightwhale_persistence_serial": 1,
                                          "lightwhale_persistence_max_fail_percentage": 0})
    assert res.rc == 0, res.stdout[-4000:]
    lines = summary_lines(res)
    assert lines["web1"].endswith("(1 member(s), single/dup)") and lines["web2"].endswith("(2 member(s), raid1/raid1)")
    assert all(has_header(disk) for disk in disks["web1"] + disks["web2"])
    assert not has_header(disks["db1"][0])


ACT_PLAY = "PLAY [Lightwhale persistence - mark disks, reboot in waves, verify]"


def waves_seen(res):
    """The hosts of each wave the acting play ran (sorted: hosts of one wave run side by side), from the output:
    Ansible prints the play's banner once per wave."""
    seen = []
    for part in res.stdout.split(ACT_PLAY)[1:]:
        part = part.split("PLAY RECAP")[0]
        hosts = []
        for host in re.findall(r"^(?:ok|changed|fatal|skipping): \[([^\]]+)\]", part, re.M):
            if host not in hosts:
                hosts.append(host)
        seen.append(sorted(hosts))
    return seen


def rollout_line(res):
    found = re.findall(r'"msg": "rollout: ([^"]*)"', res.stdout)
    assert len(found) == 1, res.stdout[-4000:]
    return found[0]


def _local_hosts(ansible, lw_workdir, names, **extra):
    hosts = {}
    for name in names:
        root = os.path.join(lw_workdir, name)
        os.makedirs(os.path.join(root, "run"), exist_ok=True)
        hosts[name] = dict(ansible_connection="local", ansible_python_interpreter=ansible.python,
                           lightwhale_persistence_root=root, **extra.get(name, {}))
    return hosts


ENABLE_PLAY = "- name: The collection's enable playbook\n  ansible.builtin.import_playbook: lightwhale.persistence.enable\n"


@pytest.mark.parametrize("source", ["group_vars", "host_vars of one host", "extra vars", "a wrapping play's vars",
                                    "nowhere"])
def test_a_reboot_from_any_source_gives_waves_of_one_and_a_budget_of_0(ansible, lw_workdir, magic_disk, source):
    names = ["h1", "h2", "h3"]
    hosts = _local_hosts(ansible, lw_workdir, names)
    for name in names:  # persistent hosts: left alone, so none is rebooted, yet the waves are those of a reboot
        disk = magic_disk("400M", name=name)
        Sandbox(ansible, hosts[name]["lightwhale_persistence_root"]).boot([disk])
        hosts[name]["lightwhale_persistence_devices"] = [disk.path]
        hosts[name]["lightwhale_persistence_select"] = {"count": 1, "min_size": "64M"}
    inventory = {"all": {"hosts": hosts}}
    extravars = {}
    if source == "group_vars":
        inventory["all"]["vars"] = {"lightwhale_persistence_reboot": True}
    elif source == "host_vars of one host":
        hosts["h2"]["lightwhale_persistence_reboot"] = "yes"
    elif source == "extra vars":
        extravars["lightwhale_persistence_reboot"] = True
    play = ENABLE_PLAY
    if source == "a wrapping play's vars":
        play += "  vars:\n    lightwhale_persistence_reboot: true\n"
    path = os.path.join(lw_workdir, "inventory.yml")
    with open(path, "w", encoding="utf-8") as handle:
        yaml.safe_dump(inventory, handle)
    res = ansible.run_playbook(play, inventory=path, extravars=extravars)
    assert res.rc == 0, res.stdout[-4000:]
    if source == "nowhere":
        assert rollout_line(res) == "3 host(s), 0 may reboot: 1 wave(s) of 3 host(s); every host is tried"
        assert waves_seen(res) == [names]
    else:
        rebooting = 1 if source == "host_vars of one host" else 3
        assert rollout_line(res) == (f"3 host(s), {rebooting} may reboot: 3 wave(s) of 1, 1, 1 host(s); "
                                     "the first failed host stops the rollout")
        assert waves_seen(res) == [["h1"], ["h2"], ["h3"]]
    assert set(summary_lines(res)) == set(names)


def test_waves_set_in_group_vars_are_honoured(ansible, lw_workdir, magic_disk):
    hosts = _local_hosts(ansible, lw_workdir, ["h1", "h2", "h3"])
    for name, host in hosts.items():
        disk = magic_disk("400M", name=name)
        Sandbox(ansible, host["lightwhale_persistence_root"]).boot([disk])
        host["lightwhale_persistence_devices"] = [disk.path]
        host["lightwhale_persistence_select"] = {"count": 1, "min_size": "64M"}
    path = _inventory(os.path.join(lw_workdir, "inventory.yml"), hosts)
    with open(path, encoding="utf-8") as handle:
        inventory = yaml.safe_load(handle)
    inventory["all"]["vars"] = {"lightwhale_persistence_serial": 2}
    with open(path, "w", encoding="utf-8") as handle:
        yaml.safe_dump(inventory, handle)
    res = ok(ansible.run_playbook(ENABLE_PLAY, inventory=path))
    assert rollout_line(res) == "3 host(s), 0 may reboot: 2 wave(s) of 2, 1 host(s); every host is tried"
    assert waves_seen(res) == [["h1", "h2"], ["h3"]]


def test_a_host_that_fails_in_the_first_wave_stops_the_rollout(ansible, lw_workdir, loopdev):
    names = ["h1", "h2", "h3"]
    disks = {name: loopdev("128M", name=name) for name in names}
    hosts = _local_hosts(ansible, lw_workdir, names)
    for name in names:
        hosts[name]["lightwhale_persistence_devices"] = [disks[name].path]
        hosts[name]["lightwhale_persistence_select"] = {"count": 1, "min_size": "64M"}
    # The canary names a disk that is not its own: its play fails before anything is marked.
    hosts["h1"]["lightwhale_persistence_disks"] = ["/dev/null"]
    path = _inventory(os.path.join(lw_workdir, "inventory.yml"), hosts)
    before = hashes(list(disks.values()))
    res = ansible.run_playbook(ENABLE_PLAY, inventory=path, extravars={"lightwhale_persistence_reboot": True})
    assert res.rc != 0
    assert waves_seen(res) == [["h1"]], res.stdout[-4000:]
    assert summary_lines(res) == {} and hashes(list(disks.values())) == before


@pytest.mark.parametrize("case, inventory_vars, per_host, needle", [
    ("one wave", {"lightwhale_persistence_reboot": True, "lightwhale_persistence_serial": "100%"}, {},
     "lightwhale_persistence_serial='100%' would reboot all 3 hosts that may reboot (h1, h2, h3) in one wave"),
    ("differs", {"lightwhale_persistence_reboot": True}, {"h2": {"lightwhale_persistence_serial": 5}},
     "lightwhale_persistence_serial differs between the hosts (h2: 5; not set for h1, h3)"),
    ("not a serial", {"lightwhale_persistence_serial": "fast"}, {},
     "lightwhale_persistence_serial='fast' is not a number of hosts, a percentage or a list of them"),
])
def test_a_rollout_the_play_cannot_honour_is_refused_before_any_host(ansible, lw_workdir, case, inventory_vars,
                                                                     per_host, needle):
    hosts = _local_hosts(ansible, lw_workdir, ["h1", "h2", "h3"], **per_host)
    path = os.path.join(lw_workdir, "inventory.yml")
    with open(path, "w", encoding="utf-8") as handle:
        yaml.safe_dump({"all": {"hosts": hosts, "vars": inventory_vars}}, handle)
    res = ansible.run_playbook(ENABLE_PLAY, inventory=path)
    failed(res, needle)
    assert ACT_PLAY not in res.stdout, f"{case}: a host was touched"
    assert not any(record.get("action", "").endswith("persistence_info") for record in res.results)


def test_docs_render(ansible):
    for kind, name in (("role", "enable"), ("filter", "enable_plan"), ("module", "persistence_info")):
        proc = subprocess.run([os.path.join(os.path.dirname(ansible.ansible), "ansible-doc"),
                               "-t", kind, f"lightwhale.persistence.{name}"],
                              capture_output=True, text=True, env=ansible.env(), check=False)
        assert proc.returncode == 0 and name in proc.stdout, proc.stderr
        assert "ERROR" not in proc.stderr, proc.stderr
