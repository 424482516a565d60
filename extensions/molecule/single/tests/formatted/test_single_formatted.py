"""Scenario single, after the boot that followed the cuts: the boot hook made the layout of the boot sequence on
the disk (created at that boot: the cut before the label left nothing to find)."""


def test_layout_single_dup(lw):
    status = lw.check_persistent(["lwd1"], "single", "dup")
    assert status["created"] is True, status


def test_summary_line_at_boot(lw):
    summary = lw.status()["summary"]
    assert summary.startswith("lightwhale-persistence: persistent"), summary
    assert summary in lw.boot_log()
    assert summary in lw.console()
