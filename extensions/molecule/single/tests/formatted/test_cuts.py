"""Scenario single, after the marked disk's first boot was cut twice by a hard reset: where each cut left the disk,
and that the next normal boot converged to the single layout."""

import re


def test_cut_in_partitioning_left_the_table_only(lw):
    disk = lw.expected()["cuts"]["after:write-gpt"]
    # The table is complete (the next boot finds the magic partitions by name); nothing is formatted yet.
    # Whether the header is still at byte 0 is recorded (docs/vm-tests.md), not asserted here.
    assert disk["label"] == "gpt", disk
    assert [p["name"] for p in disk["partitions"]] == ["lightwhale-swap", "lightwhale-data"], disk
    assert [p["fstype"] for p in disk["partitions"]] == [None, None], disk


def test_cut_in_mkfs_left_an_unlabelled_btrfs(lw):
    disk = lw.expected()["cuts"]["after:subvolume@2"]
    assert disk["header"] is False, disk
    swap, data = disk["partitions"]
    assert (swap["fstype"], swap["fslabel"]) == ("swap", "lightwhale-swap"), disk
    # The label is the commit point: not there yet, so the next boot redoes the filesystem.
    assert (data["fstype"], data["fslabel"]) == ("btrfs", None), disk


def test_each_cut_was_a_reset_at_its_checkpoint(lw):
    console = lw.console()
    for point in ("after:write-gpt", "after:subvolume@2"):
        assert "lw-test: crash point %s reached (module killed): hard reset" % point in console
    # Nothing of the boot after the cut ran: no summary line between a cut and the next start.
    for chunk in re.split(r"===== lw-vm: start", console)[1:]:
        if "lw.crash_at=" in chunk.split("\n", 1)[0]:
            assert "lightwhale-persistence: persistent" not in chunk
            assert "lightwhale-persistence: volatile" not in chunk


def test_converged_to_the_single_layout(lw):
    # Before this boot the disk held a btrfs without label and two of three subvolumes (the second cut); now the
    # labelled filesystem with all three: the boot after the cuts finished the creation.
    status = lw.check_persistent(["lwd1"], "single", "dup")
    assert status["mode"] == "persistent" and not status["failure"], status
