"""Scenario sysvinit (scenario single under SysV init), after a second reboot: the same layout, found rather than made, and every file written
before the reboot is there byte for byte, with its owner and mode; a hand run of the boot changes nothing."""


def test_layout_found_again(lw):
    status = lw.check_persistent(["lwd1"], "single", "dup")
    assert status["created"] is False, status


def test_files_survived_byte_for_byte(lw):
    lw.check_files()
    keys = lw.expected()["files"]["/home/lwuser/.ssh/authorized_keys"]
    assert keys["mode"] == "0600" and keys["owner"] == "lwuser"


def test_boot_playbook_by_hand_changes_nothing(lw):
    lw.check_hand_run_changes_nothing()
