# Integration tests of lightwhale.persistence: real Ansible runs on loop devices.
# The fixtures and hooks live in the lwkit package next to this file (see lwkit/plugin.py). It is
# registered here as a plugin (pytest refuses `pytest_plugins` in a conftest below the rootdir).
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))


def pytest_configure(config):
    if not config.pluginmanager.has_plugin("lwkit.plugin"):
        config.pluginmanager.import_plugin("lwkit.plugin")
