"""Reliability: decoys are never written.

Every decoy kind the kit makes (lwkit.decoys: near-miss headers, real filesystems, partition tables, LVM, md, LUKS,
an ISO image, random bytes, zeros) sits on its own loop disk next to two magic disks, all listed in the boot's
`devices` (the host is never scanned). The real boot playbook runs - the first boot that formats the magic disks,
then the everyday boot - and every decoy is compared with a copy of its image taken before: the full SHA-256 of
the image (lwkit's sha256_of: SHA-256 over the SHA-256 of every 1 MiB, holes included as zeros) and the number of
differing bytes (as `cmp -l` counts them, reading only where either file holds data). Both must show no change.
"""

from __future__ import annotations

import os
import re
import subprocess
import warnings

import pytest
from lwkit import blkid_probe, figures, sha256_of
from lwkit.boot import fs_df, module_runs, ok, status_of
from lwkit.decoys import DECOYS, DECOYS_BY_NAME, DecoyUnavailable
from lwkit.sysutil import read_mountinfo, read_swaps

pytestmark = [pytest.mark.needs_module(name) for name in ("magic_disk", "lw_datafs", "lw_overlay", "lw_status")]

CLAIM = "decoys never written"
DATA = "mnt/lightwhale-data"


def _data_ranges(path):
    """(start, end) byte ranges that hold data in a sparse file (SEEK_DATA/SEEK_HOLE); holes read as zeros."""
    ranges, pos = [], 0
    with open(path, "rb") as fh:
        size = os.fstat(fh.fileno()).st_size
        while pos < size:
            try:
                start = os.lseek(fh.fileno(), pos, os.SEEK_DATA)
            except OSError:  # ENXIO: only a hole is left
                break
            end = os.lseek(fh.fileno(), start, os.SEEK_HOLE)
            ranges.append((start, end))
            pos = end
    return ranges


def differing_bytes(copy, disk, chunk=1 << 20):
    """How many bytes of the disk's image differ from the copy taken before (what `cmp -l | wc -l` counts), plus
    the bytes by which the size changed. Only where either file holds data is read: a hole in both is zeros in
    both."""
    disk.flush()
    size_a, size_b = os.path.getsize(copy), os.path.getsize(disk.image)
    spans = sorted(_data_ranges(copy) + _data_ranges(disk.image))
    count = 0
    with open(copy, "rb") as a, open(disk.image, "rb") as b:
        done = 0
        for start, end in spans:
            start = max(start, done)
            for off in range(start, end, chunk):
                n = min(chunk, end - off)
                a.seek(off)
                b.seek(off)
                x, y = a.read(n), b.read(n)
                if x != y:
                    x, y = x.ljust(n, b"\0"), y.ljust(n, b"\0")
                    count += sum(1 for i, j in zip(x, y) if i != j)
            done = max(done, end)
    return count + abs(size_a - size_b)


def plant_every_decoy(loopdev):
    """Every decoy kind on its own loop disk: [(name, description, disk)], and the kinds that cannot be made."""
    planted, missing = [], []
    for spec in DECOYS:
        disk = loopdev(spec.size, name=f"decoy-{spec.name}")
        try:
            planted.append((spec.name, spec.plant(disk), disk))
        except DecoyUnavailable as exc:
            missing.append(f"{spec.name}: {exc}")
    return planted, missing


@pytest.mark.slow
def test_every_decoy_kind_stays_byte_for_byte_through_first_and_everyday_boot(boot, box, magic_disk, loopdev,
                                                                              lw_workdir):
    planted, missing = plant_every_decoy(loopdev)
    if len(planted) < 15:
        pytest.skip(f"only {len(planted)} decoy kinds can be made here (the suite asks for 15): {'; '.join(missing)}")
    if missing:
        warnings.warn("decoy kinds not made on this host: " + "; ".join(missing))
    magic = [magic_disk("512M", name="magic0"), magic_disk("512M", name="magic1")]
    decoys = [disk for _name, _what, disk in planted]
    # The magic disks among the decoys, not first in line: the boot must pick them out wherever they are listed.
    middle = len(decoys) // 2
    devices = decoys[:middle] + [magic[0]] + decoys[middle:] + [magic[1]]

    copies, hashes = {}, {}
    for name, _what, disk in planted:
        disk.flush()
        copies[name] = os.path.join(lw_workdir, f"before-{name}.img")
        subprocess.run(["cp", "--sparse=always", disk.image, copies[name]], check=True)
        hashes[name] = sha256_of(disk)
    probes = {name: blkid_probe(disk) for name, _what, disk in planted}

    first = ok(boot.boot(box, devices), changed=True)
    status = status_of(box)
    assert status["mode"] == "persistent" and status["created"] is True and status["ok"] is True, status
    assert status["devices"] == [m.part(2) for m in magic], status
    assert fs_df(os.path.join(box, DATA))["Data"] == {"raid1"}
    assert module_runs(first).get("magic_disk") == 1

    everyday = ok(boot.boot(box, devices), changed=False)
    assert module_runs(everyday).get("magic_disk") is None
    assert status_of(box)["devices"] == [m.part(2) for m in magic]

    # Nothing of a decoy is in use: no swap area, no mount.
    ours = re.compile(r"^/dev/(%s)(p\d+)?$" % "|".join(re.escape(disk.kname) for disk in decoys))
    assert not [area for area in read_swaps() if ours.match(area)], read_swaps()
    assert not [m for m in read_mountinfo() if ours.match(m.source)]

    changed_bytes, unchanged, report = 0, 0, []
    for name, what, disk in planted:
        diff = differing_bytes(copies[name], disk)
        same_hash = sha256_of(disk) == hashes[name]
        assert same_hash == (diff == 0), f"{name}: the hash and cmp disagree"
        changed_bytes += diff
        unchanged += same_hash
        if diff:
            report.append(f"{name} ({what}): {diff} bytes changed")
    assert {name: blkid_probe(disk) for name, _what, disk in planted} == probes

    figures.add(CLAIM, "bytes changed on decoys (first boot + everyday boot, all kinds at once)", changed_bytes,
                None, "bytes")
    figures.add(CLAIM, "decoy kinds left byte for byte", unchanged, len(planted), "kinds")
    assert changed_bytes == 0, "decoys were written to:\n" + "\n".join(report)
    assert unchanged == len(planted)
    for copy in copies.values():
        os.unlink(copy)


def test_decoys_alone_boot_volatile_and_stay_byte_for_byte(boot, box, loopdev):
    """No magic disk at all, every decoy kind listed: volatile, and the full first-boot search (steps 2-4 look at
    every decoy) writes nothing."""
    planted, missing = plant_every_decoy(loopdev)
    if len(planted) < 15:
        pytest.skip(f"only {len(planted)} decoy kinds can be made here: {'; '.join(missing)}")
    hashes = {name: sha256_of(disk) for name, _what, disk in planted}
    res = ok(boot.boot(box, [disk for _name, _what, disk in planted]), changed=True)
    status = status_of(box)
    assert status["mode"] == "volatile" and status["ok"] is True and status["devices"] == [], status
    assert module_runs(res).get("magic_disk") == 1
    changed = [name for name, _what, disk in planted if sha256_of(disk) != hashes[name]]
    figures.add(CLAIM, "decoy kinds left byte for byte, no magic disk (volatile boot)",
                len(planted) - len(changed), len(planted), "kinds")
    assert changed == [], f"decoys written by a boot without magic disks: {changed}"


def test_the_measures_see_a_single_changed_byte(loopdev, lw_workdir):
    """The two measures above can fail: one byte written in a hole and one in data are both seen."""
    disk = loopdev("128M", name="measure")
    DECOYS_BY_NAME["ext4"].plant(disk)
    copy = os.path.join(lw_workdir, "before.img")
    subprocess.run(["cp", "--sparse=always", disk.image, copy], check=True)
    before = sha256_of(disk)
    assert differing_bytes(copy, disk) == 0
    superblock = disk.read(1024, 16)
    disk.write(1024, bytes([superblock[0] ^ 0xFF]))  # data
    disk.write(100 << 20, b"\x01")  # a hole of the image
    assert differing_bytes(copy, disk) == 2
    assert sha256_of(disk) != before
