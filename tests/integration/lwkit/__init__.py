"""lwkit: the pytest fixture kit of lightwhale.persistence (loop disks, decoys, Ansible runs).

Public API (see each module's docstring):
- loop:    LoopDisk, attach(), teardown_disks(), teardown_everything(), install_safety_net(), parse_size(), temp_root()
- disk:    MAGIC, write_header(), has_header(), read_bytes(), sha256_of(), snapshot(), changed_disks(),
           partition_table(), partitions_of(), blkid_probe(), signatures_of(), gpt_remnants(), is_blockdev()
- decoys:  DECOYS, DECOYS_BY_NAME, DecoyUnavailable, plant_filesystem()
- ansible: AnsibleRunner (run_module, run_playbook), RunResult, mode_args(), read_records(), playbook_result()
- sysutil: run(), read_mountinfo(), read_swaps(), umount(), wait_for(), ensure_private_mount_ns()
- plugin:  the pytest fixtures (loopdev, magic_disk, magic_disks, decoy, sandbox_root, ansible, lw_workdir, boot, box)
"""

from .disk import (  # noqa: F401
    DATA_LABEL,
    GUID_LINUX_FS,
    GUID_LINUX_SWAP,
    MAGIC,
    MIB,
    SWAP_LABEL,
    blkid_probe,
    changed_disks,
    gpt_remnants,
    has_header,
    is_blockdev,
    partition_table,
    partitions_of,
    read_bytes,
    sha256_of,
    signatures_of,
    snapshot,
    write_header,
)
from .loop import LoopDisk, parse_size  # noqa: F401
from .sysutil import read_mountinfo, read_swaps, run  # noqa: F401
