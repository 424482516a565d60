"""Scenario legacy, after the reboot: the host's own boot activated the volume group, found the ext4 labelled
lightwhale-data on its logical volume and came up persistent on it, as it is, with swap on the swap volume, the files
written before intact and the overlays on its state directory."""

import json

DATA = "/mnt/lightwhale-data"
STATE = DATA + "/lightwhale-state"
LV = "/dev/mapper/lwvg-lwdata"
SWAP = "/dev/mapper/lwvg-lwswap"


def test_the_boot_activated_the_volume_group_itself(lw):
    status = lw.status()
    # Autoactivation is off for this group: only lw_datafs can have activated it, and it says so.
    assert status["steps"]["datafs"].get("lvm_activated") == ["lwvg/lwdata", "lwvg/lwswap"], status
    attrs = lw.run("lvs --noheadings -o lv_name,lv_attr lwvg").split()
    assert dict(zip(attrs[::2], (attr[4] for attr in attrs[1::2]))) == {"lwdata": "a", "lwswap": "a"}, attrs


def test_persistent_legacy_on_the_logical_volume_as_it_is(lw):
    lw.check_read_only_image()
    lw.check_hook_ran_at_boot()
    status = lw.status()
    assert status["mode"] == "persistent" and status["ok"] is True, status
    assert status["legacy"] is True and status["fstype"] == "ext4" and status["devices"] == [LV], status
    assert status["swap_devices"] == [SWAP], status
    assert status["summary"].startswith("lightwhale-persistence: persistent legacy ext4 on %s; swap %s; overlays "
                                        "/etc /var /home" % (LV, SWAP)), status["summary"]
    assert status["summary"] in lw.boot_log()
    data = lw.mount(DATA)
    assert data["fstype"] == "ext4" and data["source"] == LV, data
    assert lw.mount(STATE) is None
    assert lw.run("stat -c %a:%U " + STATE) == "755:root"
    assert lw.run("blkid -o value -s LABEL " + LV) == "lightwhale-data"
    assert SWAP in lw.swaps() or lw.run("readlink -f " + SWAP) in lw.swaps(), lw.swaps()
    lw.check_overlays(STATE)
    daemon = json.loads(lw.run("cat /etc/docker/daemon.json"))
    assert daemon["data-root"] == STATE + "/docker", daemon


def test_the_files_written_before_are_intact(lw):
    recorded = lw.expected()["sha256"]
    assert len(recorded) == 3
    for rel, digest in recorded.items():
        assert lw.sha256("%s/%s" % (DATA, rel)) == digest, rel


def test_the_boot_playbook_by_hand_changes_nothing(lw):
    lw.check_hand_run_changes_nothing()
    assert lw.status()["steps"]["datafs"].get("lvm_activated") == ["lwvg/lwdata", "lwvg/lwswap"]
