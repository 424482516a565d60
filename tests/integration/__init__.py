# A package, so that test module names do not clash with tests/unit/plugins/modules/test_<module>.py
# (pytest imports test files without a package by their basename).
