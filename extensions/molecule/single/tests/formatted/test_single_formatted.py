"""Scenario single, after the boot that followed the cuts: the boot hook made the layout of the boot sequence on
the disk (created at that boot: the cut before the label left nothing to find)."""

from lwvm_steps import test_layout_single_dup, test_summary_line_at_boot

__all__ = ["test_layout_single_dup", "test_summary_line_at_boot"]
