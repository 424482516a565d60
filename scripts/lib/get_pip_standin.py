"""Offline stand-in for the get-pip.py that ansible-test downloads from its CI file host.

scripts/ansible-test installs this file as $HOME/.ansible/test/cache/get_pip_<X_Y>.py, where
ansible-test looks for a cached copy before it tries the (unreachable) download. ansible-test runs
it inside each fresh venv it creates, with pip install arguments such as
"--disable-pip-version-check pip==24.2 --no-setuptools --no-wheel".

It must run on every target Python of the oldest core (3.8+), so keep the syntax plain.
"""
import ensurepip
import importlib
import os
import runpy
import sys


def main():
    ensurepip.bootstrap()
    # ensurepip sets PIP_CONFIG_FILE=/dev/null in os.environ, which would hide the machine's
    # pip configuration files (CA certificate, constraints, indexes) from the pip run below.
    os.environ.pop('PIP_CONFIG_FILE', None)
    importlib.invalidate_caches()
    args = [arg for arg in sys.argv[1:] if arg not in ('--no-setuptools', '--no-wheel')]
    sys.argv = ['pip', 'install'] + args
    runpy.run_module('pip', run_name='__main__', alter_sys=True)


if __name__ == '__main__':
    main()
