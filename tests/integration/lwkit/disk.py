"""Disk helpers: the magic header, content hashes, partition tables and signature probes.

Every helper takes a LoopDisk, a block-device path or an image-file path. Reads of a LoopDisk go
through its image file after a flush of the device's page cache (see LoopDisk.flush), so writes
made through /dev/loopN are seen.
"""

from __future__ import annotations

import hashlib
import json
import os
import stat

from .loop import LoopDisk
from .sysutil import CommandError, run

MAGIC = b"lightwhale-please-format-me"
SWAP_LABEL = "lightwhale-swap"
DATA_LABEL = "lightwhale-data"
GUID_LINUX_SWAP = "0657FD6D-A4AB-43C4-84E5-0933C84B4F4F"
GUID_LINUX_FS = "0FC63DAF-8483-4772-8E79-3D69D8477DE4"
SECTOR = 512
MIB = 1 << 20
CHUNK = MIB


def _path(target):
    if isinstance(target, LoopDisk):
        return target.path
    return os.fspath(target)


def _flush(target):
    if isinstance(target, LoopDisk):
        target.flush()
    else:
        p = os.fspath(target)
        try:
            if stat.S_ISBLK(os.stat(p).st_mode):
                run(["blockdev", "--flushbufs", p], check=False)
        except OSError:
            pass


def write_header(target, newline=True, offset=0, data=None):
    """Write the magic header (27 bytes, plus '\\n' unless newline=False) at `offset`, fsync'd.

    `data` overrides the bytes written (for decoys)."""
    payload = data if data is not None else MAGIC + (b"\n" if newline else b"")
    path = _path(target)
    fd = os.open(path, os.O_WRONLY)
    try:
        os.pwrite(fd, payload, offset)
        os.fsync(fd)
    finally:
        os.close(fd)
    _flush(target)
    return payload


def read_bytes(target, offset, length):
    """Bytes at offset (negative offset: from the end), after a flush."""
    _flush(target)
    path = target.image if isinstance(target, LoopDisk) else _path(target)
    with open(path, "rb") as fh:
        if offset < 0:
            fh.seek(0, os.SEEK_END)
            offset = fh.tell() + offset
        fh.seek(offset)
        return fh.read(length)


def has_header(target, newline=None):
    """True when the exact magic sits at byte 0 (newline: None = don't care, True/False = require)."""
    head = read_bytes(target, 0, len(MAGIC) + 1)
    if not head.startswith(MAGIC):
        return False
    if newline is None:
        return True
    return (head[len(MAGIC):] == b"\n") == newline


def _size_of(fh, st):
    if stat.S_ISBLK(st.st_mode):
        fh.seek(0, os.SEEK_END)
        size = fh.tell()
        fh.seek(0)
        return size
    return st.st_size


def _data_ranges(fd, size):
    """(start, end) ranges holding data in a sparse regular file; the whole file if unsupported."""
    ranges = []
    pos = 0
    try:
        while pos < size:
            try:
                start = os.lseek(fd, pos, os.SEEK_DATA)
            except OSError:  # ENXIO: no more data
                break
            end = os.lseek(fd, start, os.SEEK_HOLE)
            ranges.append((start, end))
            pos = end
    except (AttributeError, OSError):
        return [(0, size)]
    return ranges


def sha256_of(target, skip=()):
    """Content hash of a whole disk, image file or block device (hex string).

    It is a chunked SHA-256: SHA-256 over the size and the SHA-256 of every 1 MiB chunk. It
    depends only on the bytes (a hole and written zeros hash alike; an image and the loop device
    on it hash alike), and holes of sparse images are not read, so hashing a 512 MiB mostly-empty
    image takes milliseconds. Any changed byte changes it, except in the byte ranges `skip`
    ((start, end) pairs), which hash as zeros: bytes the kernel owns, such as an active swap area."""
    _flush(target)
    path = target.image if isinstance(target, LoopDisk) else _path(target)
    outer = hashlib.sha256()
    zero_digests = {}
    with open(path, "rb") as fh:
        st = os.fstat(fh.fileno())
        size = _size_of(fh, st)
        outer.update(str(size).encode() + b"\0")
        if stat.S_ISREG(st.st_mode):
            ranges = _data_ranges(fh.fileno(), size)
        else:
            ranges = [(0, size)]
        ri = 0
        for off in range(0, size, CHUNK):
            n = min(CHUNK, size - off)
            while ri < len(ranges) and ranges[ri][1] <= off:
                ri += 1
            has_data = ri < len(ranges) and ranges[ri][0] < off + n
            cut = [(max(a, off) - off, min(b, off + n) - off) for a, b in skip if a < off + n and b > off]
            if cut:
                fh.seek(off)
                buf = bytearray(fh.read(n))
                for a, b in cut:
                    buf[a:b] = bytes(b - a)
                outer.update(hashlib.sha256(bytes(buf)).digest())
            elif has_data:
                fh.seek(off)
                buf = fh.read(n)
                if len(buf) != n:
                    raise IOError(f"short read at {off} in {path}")
                outer.update(hashlib.sha256(buf).digest())
            else:
                if n not in zero_digests:
                    zero_digests[n] = hashlib.sha256(bytes(n)).digest()
                outer.update(zero_digests[n])
    return outer.hexdigest()


def partition_table(target):
    """`sfdisk --json` of the disk as a dict, or None when it holds no partition table."""
    path = _path(target)
    _flush(target)
    proc = run(["sfdisk", "--json", path], check=False)
    if proc.returncode != 0:
        if "does not contain a recognized partition table" in proc.stderr:
            return None
        raise CommandError(["sfdisk", "--json", path], proc.returncode, proc.stdout, proc.stderr)
    return json.loads(proc.stdout)["partitiontable"]


def partitions_of(target):
    """List of partition dicts from `sfdisk --json` (node, start, size, type, uuid, name), [] if none."""
    table = partition_table(target)
    return list(table.get("partitions", [])) if table else []


def blkid_probe(target):
    """Low-level probe, `blkid -p -o export`: a dict of what was found ({} when nothing).

    A failing probe raises (never read as "nothing there"). An ambivalent result (several
    signatures) is returned as {'AMBIVALENT': '1', ...} with blkid's message."""
    path = _path(target)
    _flush(target)
    proc = run(["blkid", "-p", "-o", "export", path], check=False)
    if proc.returncode == 2:
        return {}
    if proc.returncode == 8:
        return {"AMBIVALENT": "1", "MESSAGE": (proc.stderr or proc.stdout).strip()}
    if proc.returncode != 0:
        raise CommandError(["blkid", "-p", path], proc.returncode, proc.stdout, proc.stderr)
    out = {}
    for line in proc.stdout.splitlines():
        k, sep, v = line.partition("=")
        if sep:
            out[k] = v
    return out


def signatures_of(target):
    """Every signature wipefs knows on the device (`wipefs --no-act --json`): list of dicts."""
    path = _path(target)
    _flush(target)
    proc = run(["wipefs", "--no-act", "--json", path], check=False)
    if proc.returncode != 0:
        raise CommandError(["wipefs", "-n", path], proc.returncode, proc.stdout, proc.stderr)
    if not proc.stdout.strip():
        return []
    return json.loads(proc.stdout).get("signatures", [])


def gpt_remnants(target):
    """Offsets of b'EFI PART' in the first 34 and the last 33 sectors (both GPT copies' areas)."""
    size = _disk_size(target)
    head = read_bytes(target, 0, 34 * SECTOR)
    tail_off = size - 33 * SECTOR
    tail = read_bytes(target, tail_off, 33 * SECTOR)
    found = []
    for base, buf in ((0, head), (tail_off, tail)):
        i = buf.find(b"EFI PART")
        while i >= 0:
            found.append(base + i)
            i = buf.find(b"EFI PART", i + 1)
    return found


def _disk_size(target):
    if isinstance(target, LoopDisk):
        return target.size
    p = _path(target)
    with open(p, "rb") as fh:
        return _size_of(fh, os.fstat(fh.fileno()))


def is_blockdev(path):
    try:
        return stat.S_ISBLK(os.stat(path).st_mode)
    except OSError:
        return False


def snapshot(disks):
    """{disk.path: sha256_of(disk)} for a list of disks (for before/after comparisons)."""
    return {d.path: sha256_of(d) for d in disks}


def changed_disks(before, disks):
    """Names of the disks whose content differs from a snapshot()."""
    return [f"{d.name} ({d.path})" for d in disks if sha256_of(d) != before[d.path]]
