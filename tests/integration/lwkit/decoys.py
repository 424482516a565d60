"""Decoys: loop disks that must NOT be taken for magic disks (and hold data worth protecting).

Each decoy is planted on a fresh kit disk with the real tool where the tool works on this host,
and then verified by probing (blkid, the tool's own check). When a decoy cannot be made for real
here, its planter raises DecoyUnavailable with the reason, and tests report it as skipped with
that reason -- never as a pass.

How each one is made here (kernel without md/dm modules, no udev):
- header_* variants, random, zeros: plain writes (that is what they are).
- ext4: mkfs.ext4. btrfs: mkfs.btrfs -L <another label>. swap: mkswap. xfs: mkfs.xfs (on 320 MiB: mkfs.xfs
  refuses a filesystem under 300 MiB). vfat: mkfs.vfat.
- iso9660: a raw ISO image made by xorriso (-as mkisofs) from a small tree, written at byte 0.
- gpt: sgdisk (two partitions); mbr: sfdisk (label dos, one partition).
- lvm_pv: pvcreate on the loop device (LVM needs no device-mapper to write a PV label).
- luks1, luks2: cryptsetup luksFormat --type luks1 / luks2 (formatting needs no device-mapper; opening would).
- md_member: `mdadm --create` cannot work on this host: the kernel has no md driver, mdadm fails
  with "unexpected failure opening /dev/mdN" before writing any superblock. So the kit writes the
  very superblock mdadm writes for metadata 1.2 (struct mdp_superblock_1 at 4 KiB, checksum as in
  mdadm's super1.c calc_sb_1_csum), and then requires that the real tools accept it:
  `mdadm --examine` must report "Checksum : ... correct" and blkid must report
  TYPE=linux_raid_member. If either does not, the decoy is unavailable (skipped), not faked.
"""

from __future__ import annotations

import os
import shutil
import struct
import time
import uuid
from dataclasses import dataclass, field

from .disk import MAGIC, MIB, blkid_probe, write_header
from .sysutil import run


class DecoyUnavailable(Exception):
    """This decoy cannot be made for real on this host (the message says why)."""


def _need(tool):
    if shutil.which(tool) is None:
        raise DecoyUnavailable(f"{tool} is not installed on this host")


def _expect_type(disk, key, value):
    probe = blkid_probe(disk)
    if probe.get(key) != value:
        raise DecoyUnavailable(f"planted, but blkid -p reports {probe!r}, not {key}={value}")
    return probe


def _expect_pttype(disk, pttype):
    probe = blkid_probe(disk)
    if probe.get("PTTYPE") != pttype:
        raise DecoyUnavailable(f"planted, but blkid -p reports {probe!r}, not PTTYPE={pttype}")


# --- planters: each takes a LoopDisk and returns a short description of what it planted ------


def plant_header_at(offset):
    def plant(disk):
        write_header(disk, newline=True, offset=offset)
        return f"magic header + newline at byte {offset}"

    return plant


def plant_bytes(data, what):
    def plant(disk):
        write_header(disk, data=data)
        return what

    return plant


def plant_filesystem(argv, fstype, what):
    """A planter that runs the tool `argv` on the disk (its path appended), then needs blkid -p to see TYPE=fstype."""

    def plant(disk):
        _need(argv[0])
        run(argv + [disk.path])
        disk.flush()
        _expect_type(disk, "TYPE", fstype)
        return what

    return plant


plant_ext4 = plant_filesystem(["mkfs.ext4", "-q", "-F", "-L", "other-data"], "ext4", "mkfs.ext4 -L other-data")
plant_swap = plant_filesystem(["mkswap", "-L", "other-swap"], "swap", "mkswap -L other-swap")
plant_xfs = plant_filesystem(["mkfs.xfs", "-q", "-f", "-L", "other-xfs"], "xfs", "mkfs.xfs -L other-xfs")
plant_vfat = plant_filesystem(["mkfs.vfat", "-n", "OTHERFAT"], "vfat", "mkfs.vfat -n OTHERFAT")
_plant_btrfs_only = plant_filesystem(["mkfs.btrfs", "-f", "-L", "not-lightwhale"], "btrfs", "mkfs.btrfs -L not-lightwhale")


def plant_btrfs(disk):
    what = _plant_btrfs_only(disk)
    run(["btrfs", "device", "scan", "--forget", disk.path], check=False)
    return what


def plant_iso9660(disk):
    _need("xorriso")
    tree = os.path.join(disk.workdir or os.path.dirname(disk.image), f"iso-tree-{disk.kname}")
    iso = os.path.join(disk.workdir or os.path.dirname(disk.image), f"decoy-{disk.kname}.iso")
    os.makedirs(tree, exist_ok=True)
    with open(os.path.join(tree, "README.TXT"), "w", encoding="ascii") as fh:
        fh.write("an installer image someone wrote to this disk\n")
    try:
        run(["xorriso", "-as", "mkisofs", "-quiet", "-V", "OTHER_ISO", "-o", iso, tree])
        with open(iso, "rb") as fh:
            image = fh.read()
    finally:
        shutil.rmtree(tree, ignore_errors=True)
        try:
            os.unlink(iso)
        except FileNotFoundError:
            pass
    write_header(disk, data=image)
    _expect_type(disk, "TYPE", "iso9660")
    return f"raw ISO 9660 image ({len(image)} bytes, xorriso -as mkisofs -V OTHER_ISO) at byte 0"


def plant_gpt(disk):
    _need("sgdisk")
    run(
        [
            "sgdisk",
            "-n", "1:0:+16M", "-c", "1:old-esp", "-t", "1:ef00",
            "-n", "2:0:0", "-c", "2:old-root", "-t", "2:8300",
            disk.path,
        ]
    )
    disk.flush()
    _expect_pttype(disk, "gpt")
    return "sgdisk: GPT with 2 partitions (old-esp, old-root)"


def plant_mbr(disk):
    _need("sfdisk")
    run(["sfdisk", "--no-reread", "--no-tell-kernel", disk.path], input="label: dos\n,32M,83\n")
    disk.flush()
    _expect_pttype(disk, "dos")
    return "sfdisk: MBR (dos) with 1 Linux partition"


def plant_lvm_pv(disk):
    _need("pvcreate")
    env = dict(os.environ, LC_ALL="C", LVM_SUPPRESS_FD_WARNINGS="1")
    run(["pvcreate", "-y", "-ff", disk.path], env=env)
    disk.flush()
    _expect_type(disk, "TYPE", "LVM2_member")
    return "pvcreate"


def plant_luks(version):
    def plant(disk):
        _need("cryptsetup")
        run(
            [
                "cryptsetup", "luksFormat", "--batch-mode", "--type", f"luks{version}",
                "--pbkdf", "pbkdf2", "--pbkdf-force-iterations", "1000",
                "--key-file", "-", disk.path,
            ],
            input="lwkit-decoy-passphrase",
        )
        disk.flush()
        _expect_type(disk, "TYPE", "crypto_LUKS")
        if _probe_version(disk) != str(version):
            raise DecoyUnavailable(f"cryptsetup did not write a LUKS{version} header")
        return f"cryptsetup luksFormat --type luks{version}"

    return plant


plant_luks2 = plant_luks(2)


def _probe_version(disk):
    return blkid_probe(disk).get("VERSION")


def md_superblock_v12(dev_size, name=b"lwkit:decoy"):
    """The 256+4-byte metadata-1.2 superblock mdadm writes at 4 KiB (2-device RAID1, role 0)."""
    off = 4096
    max_dev = 2
    data_offset = 2048  # sectors
    data_size = dev_size // 512 - data_offset
    now = int(time.time())
    sb = bytearray(256 + 2 * max_dev)
    struct.pack_into("<IIII", sb, 0, 0xA92B4EFC, 1, 0, 0)  # magic, major_version, feature_map, pad
    sb[16:32] = uuid.uuid4().bytes  # set_uuid
    sb[32:64] = name.ljust(32, b"\0")  # set_name
    struct.pack_into("<Q", sb, 64, now)  # ctime
    struct.pack_into("<iI", sb, 72, 1, 0)  # level 1, layout
    struct.pack_into("<Q", sb, 80, data_size)  # size
    struct.pack_into("<II", sb, 88, 0, 2)  # chunksize, raid_disks
    struct.pack_into("<Q", sb, 128, data_offset)
    struct.pack_into("<Q", sb, 136, data_size)
    struct.pack_into("<Q", sb, 144, off // 512)  # super_offset
    struct.pack_into("<I", sb, 160, 0)  # dev_number
    sb[168:184] = uuid.uuid4().bytes  # device_uuid
    struct.pack_into("<Q", sb, 192, now)  # utime
    struct.pack_into("<Q", sb, 200, 1)  # events
    struct.pack_into("<Q", sb, 208, 0xFFFFFFFFFFFFFFFF)  # resync_offset: clean
    struct.pack_into("<I", sb, 220, max_dev)
    struct.pack_into("<HH", sb, 256, 0, 0xFFFF)  # dev_roles: slot 0 active as 0, slot 1 spare/none
    total = sum(struct.unpack_from("<I", sb, i)[0] for i in range(0, len(sb), 4))
    struct.pack_into("<I", sb, 216, ((total & 0xFFFFFFFF) + (total >> 32)) & 0xFFFFFFFF)
    return off, bytes(sb)


def plant_md_member(disk):
    _need("mdadm")
    off, sb = md_superblock_v12(disk.size)
    write_header(disk, data=sb, offset=off)
    exam = run(["mdadm", "--examine", disk.path], check=False)
    if exam.returncode != 0 or "correct" not in exam.stdout:
        raise DecoyUnavailable(
            "mdadm --create needs the kernel md driver (absent here) and the hand-written v1.2 "
            f"superblock was not accepted by mdadm --examine: {exam.stdout or exam.stderr}"
        )
    _expect_type(disk, "TYPE", "linux_raid_member")
    return "md v1.2 member superblock (hand-written; verified by mdadm --examine and blkid)"


def plant_random(disk):
    data = os.urandom(MIB)
    while data.startswith(MAGIC):  # astronomically unlikely, but be exact
        data = os.urandom(MIB)
    write_header(disk, data=data)
    return "1 MiB of random bytes at byte 0"


def plant_zeros(disk):
    write_header(disk, data=bytes(MIB))
    return "1 MiB of written zeros at byte 0 (rest sparse)"


@dataclass(frozen=True)
class Decoy:
    name: str
    plant: callable
    # signature: a partition table/filesystem/RAID/LVM/LUKS -> `present` must refuse without force
    # data: bytes no tool recognises (header look-alikes, random); blank: nothing at all
    kind: str
    size: str = "128M"
    # words of which at least one must appear in a refusal message (case-insensitive)
    words: tuple = field(default=("data",))


DECOYS = [
    Decoy("header_offset_1", plant_header_at(1), "data"),
    Decoy("header_offset_512", plant_header_at(512), "data"),
    Decoy("header_upper", plant_bytes(MAGIC.upper() + b"\n", "upper-case header"), "data"),
    Decoy("header_truncated", plant_bytes(MAGIC[:-1] + b"\n", "header missing its last byte"), "data"),
    Decoy("header_leading_space", plant_bytes(b" " + MAGIC + b"\n", "header after a space"), "data"),
    Decoy(
        "header_utf16",
        plant_bytes((MAGIC.decode() + "\n").encode("utf-16"), "UTF-16 (BOM, LE) header"),
        "data",
    ),
    Decoy("ext4", plant_ext4, "signature", words=("ext4",)),
    Decoy("btrfs_other_label", plant_btrfs, "signature", size="160M", words=("btrfs",)),
    Decoy("swap", plant_swap, "signature", words=("swap",)),
    Decoy("xfs", plant_xfs, "signature", size="320M", words=("xfs",)),
    Decoy("vfat", plant_vfat, "signature", words=("vfat", "fat")),
    Decoy("gpt_partitions", plant_gpt, "signature", words=("gpt", "partition")),
    Decoy("mbr_partition", plant_mbr, "signature", words=("dos", "mbr", "partition")),
    Decoy("lvm_pv", plant_lvm_pv, "signature", words=("lvm",)),
    Decoy("md_member", plant_md_member, "signature", words=("raid", "md")),
    Decoy("luks1", plant_luks(1), "signature", words=("luks", "crypt")),
    Decoy("luks2", plant_luks2, "signature", words=("luks", "crypt")),
    Decoy("iso9660", plant_iso9660, "signature", words=("iso9660", "iso")),
    Decoy("random_first_mib", plant_random, "data"),
    Decoy("zeros", plant_zeros, "blank"),
]

DECOYS_BY_NAME = {d.name: d for d in DECOYS}


def decoy_pool(loopdev):
    """Every decoy the kit can make here, each on its own loop disk from `loopdev`: {name: (disk, description)}."""
    made = {}
    for spec in DECOYS:
        disk = loopdev(spec.size, name=f"decoy-{spec.name}")
        try:
            made[spec.name] = (disk, spec.plant(disk))
        except DecoyUnavailable:
            continue
    return made
