"""Scenario single, after a second reboot: the same layout, found rather than made, and every file written
before the reboot is there byte for byte, with its owner and mode; a hand run of the boot changes nothing."""

from lwvm_steps import test_layout_found_again, test_files_survived_byte_for_byte, test_boot_playbook_by_hand_changes_nothing

__all__ = ["test_layout_found_again", "test_files_survived_byte_for_byte", "test_boot_playbook_by_hand_changes_nothing"]
