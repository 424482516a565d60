"""Scenario sysvinit (scenario single under SysV init), after the first reboot: the boot hook made the layout of docs/boot-sequence.md on the disk."""

from lwvm_steps import test_layout_single_dup, test_summary_line_at_boot

__all__ = ["test_layout_single_dup", "test_summary_line_at_boot"]
