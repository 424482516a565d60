"""Scenario sysvinit (scenario single under SysV init), after the disk was marked over SSH: the header is on it, nothing else was written, and the
host is still volatile until it reboots."""

from lwvm_steps import test_disk_carries_the_header_only, test_still_volatile_until_the_reboot

__all__ = ["test_disk_carries_the_header_only", "test_still_volatile_until_the_reboot"]
