# Integration tests of lightwhale.persistence: real Ansible runs on loop devices.
# The fixtures and hooks live in the lwkit package next to this file (see lwkit/plugin.py).
# They are imported here (not via pytest_plugins, which pytest refuses in a non-root conftest).
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from lwkit.plugin import *  # noqa: E402,F401,F403
