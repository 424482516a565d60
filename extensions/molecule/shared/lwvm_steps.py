"""The checks of the one-disk sequence that scenarios single and sysvinit both run, by step: the test module of a
step (tests/marked, tests/formatted, tests/persisted in each scenario) imports the step's tests from here, and
pytest collects them there under these names. What differs between the init systems is checked by lwvm_plugin
(LwHost.check_hook_ran_at_boot, LwHost.boot_log). lwvm_plugin has pytest rewrite this module's asserts."""

# --- tests/marked: after the disk was marked over SSH -------------------------------------------------------------


def test_disk_carries_the_header_only(lw):
    head = lw.head("lwd1", 4096)
    assert head.startswith(b"lightwhale-please-format-me")
    assert set(head[28:]) == {0}, "more than the header was written"


def test_still_volatile_until_the_reboot(lw):
    lw.check_volatile()


# --- tests/formatted: after the boot that made the layout ---------------------------------------------------------

def test_layout_single_dup(lw):
    status = lw.check_persistent(["lwd1"], "single", "dup")
    assert status["created"] is True, status


def test_summary_line_at_boot(lw):
    summary = lw.status()["summary"]
    assert summary.startswith("lightwhale-persistence: persistent"), summary
    assert summary in lw.boot_log()
    assert summary in lw.console()


# --- tests/persisted: after a second reboot -----------------------------------------------------------------------

def test_layout_found_again(lw):
    status = lw.check_persistent(["lwd1"], "single", "dup")
    assert status["created"] is False, status


def test_files_survived_byte_for_byte(lw):
    lw.check_files()
    keys = lw.expected()["files"]["/home/lwuser/.ssh/authorized_keys"]
    assert keys["mode"] == "0600" and keys["owner"] == "lwuser"


def test_boot_playbook_by_hand_changes_nothing(lw):
    lw.check_hand_run_changes_nothing()
