"""Scenario single, after a volatile reboot: volatile again, what was written before the reboot is gone, and the
blank disk was still not written."""


def test_volatile_again(lw):
    lw.check_volatile()


def test_files_written_before_the_reboot_are_gone(lw):
    for path in ("/etc/lw-marker", "/var/lib/lw-marker", "/home/lw-marker"):
        assert not lw.host.file(path).exists, path


def test_blank_disk_still_not_written(lw):
    # Its first MiB (partition tables, the header, signatures) holds nothing but zeros.
    assert lw.run("head -c 1048576 %s | tr -d '\\000' | wc -c" % lw.disk("lwd1")) == "0"
