"""Molecule from the repository root: every scenario is listed, and none starts with a CRITICAL or WARNING line.

Runs `molecule list` and `molecule syntax -s <scenario>` the way tests/vm/molecule sets molecule up (ANSIBLE_HOME
of its own, no MOLECULE_EPHEMERAL_DIRECTORY); no VM is started.
"""
import os
import re
import shutil
import subprocess

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SCENARIOS = sorted(name for name in os.listdir(os.path.join(ROOT, "extensions", "molecule"))
                   if os.path.isfile(os.path.join(ROOT, "extensions", "molecule", name, "molecule.yml")))
ALARM = re.compile(r"\b(CRITICAL|WARNING|ERROR)\b|Warning:")


@pytest.fixture
def molecule_env(tmp_path):
    if not shutil.which("molecule"):
        pytest.fail("molecule is not on PATH (scripts/test runs pytest with the 2.19 venv's bin first)")
    colls = tmp_path / "collections" / "ansible_collections" / "lightwhale"
    colls.mkdir(parents=True)
    (colls / "persistence").symlink_to(ROOT)
    env = {k: v for k, v in os.environ.items() if not k.startswith("MOLECULE_") and k != "VIRTUAL_ENV"}
    env.update(ANSIBLE_HOME=str(tmp_path / "ansible-home"), ANSIBLE_COLLECTIONS_PATH=str(tmp_path / "collections"),
               NO_COLOR="1", PY_COLORS="0", ANSIBLE_NOCOLOR="1", COLUMNS="200")
    return env


def molecule(env, *args):
    return subprocess.run(["molecule", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120,
                          check=False)


def alarms(result):
    return [line for line in (result.stdout + result.stderr).splitlines() if ALARM.search(line)]


def test_list_shows_every_scenario(molecule_env):
    assert {"default", "single", "fleet"} <= set(SCENARIOS)
    result = molecule(molecule_env, "list")
    assert result.returncode == 0, result.stdout + result.stderr
    for name in SCENARIOS:
        assert re.search(r"\b%s\b" % re.escape(name), result.stdout), f"scenario {name} not listed:\n{result.stdout}"
    assert alarms(result) == []


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_starts_without_critical_or_warning(molecule_env, scenario):
    # Twice: the second start reads the state the first one left, where molecule's "modified since" warning lives.
    # The default scenario has no steps (and no playbook to check): its whole, empty, test sequence runs instead.
    command = "test" if scenario == "default" else "syntax"
    for start in (1, 2):
        result = molecule(molecule_env, command, "-s", scenario)
        assert result.returncode == 0, result.stdout + result.stderr
        assert alarms(result) == [], f"start {start}:\n" + result.stdout + result.stderr
