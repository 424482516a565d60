"""Scenario sysvinit (scenario single under SysV init), after the disk was marked over SSH: the header is on it, nothing else was written, and the
host is still volatile until it reboots."""


def test_disk_carries_the_header_only(lw):
    head = lw.head("lwd1", 4096)
    assert head.startswith(b"lightwhale-please-format-me")
    assert set(head[28:]) == {0}, "more than the header was written"


def test_still_volatile_until_the_reboot(lw):
    lw.check_volatile()
