"""Scenario rollback, after the fleet role rolled the VM back and rebooted it: /etc and Docker's data root are as
they were at the snapshot, @lightwhale-data kept what was written after it, the replaced state is kept as a
snapshot, and the boot said what it did."""

ROLLED_BACK = "rolled back to before-change"


def test_persistent_and_rolled_back_at_this_boot(lw):
    status = lw.check_persistent(["lwd1"], "single", "dup")
    assert status["state_change"] == ROLLED_BACK, status
    assert ROLLED_BACK in status["summary"]
    assert status["summary"] in lw.boot_log()


def test_etc_and_docker_are_as_at_the_snapshot(lw):
    assert lw.run("cat /etc/lw-rollback/app.conf") == "good"
    assert not lw.host.file("/etc/lw-rollback/extra.conf").exists
    assert lw.run("cat /mnt/lightwhale-data/lightwhale-state/docker/lw-rollback.txt") == "good"


def test_the_data_subvolume_is_never_rolled_back(lw):
    assert lw.run("cat /mnt/lightwhale-data/lw-rollback-data.txt") == "kept"


def test_the_replaced_state_is_kept_and_nothing_waits(lw):
    listed = lw.run("btrfs subvolume list /mnt/lightwhale-data").splitlines()
    paths = sorted(line.split(" path ", 1)[1] for line in listed)
    snapshots = [path for path in paths if path.startswith("@lightwhale-state-snapshots/")]
    assert "@lightwhale-state-snapshots/before-change" in snapshots, paths
    kept = [path for path in snapshots if path.startswith("@lightwhale-state-snapshots/before-rollback-")]
    assert len(kept) == 1, paths
    assert "@lightwhale-state.new" not in paths and "@lightwhale-state.old" not in paths
    assert not lw.host.file("/mnt/lightwhale-data/.lightwhale-persistence/request.json").exists
