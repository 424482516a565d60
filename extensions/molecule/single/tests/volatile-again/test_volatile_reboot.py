"""Scenario volatile, after a reboot: volatile again, and what was written before the reboot is gone."""


def test_volatile_again(lw):
    lw.check_volatile()


def test_files_written_before_the_reboot_are_gone(lw):
    for path in ("/etc/lw-marker", "/var/lib/lw-marker", "/home/lw-marker"):
        assert not lw.host.file(path).exists, path
