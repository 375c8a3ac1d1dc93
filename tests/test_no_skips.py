"""CI turns every skip into a failure, so a missing extra cannot leave the suite green but partly unrun."""

import os
import subprocess
import sys
from pathlib import Path

TESTS = Path(__file__).parent


def pytest_on(tmp_path, body: str, no_skips: bool) -> subprocess.CompletedProcess:
    (tmp_path / "test_probe.py").write_text(body)
    env = {**os.environ, "PYTHONPATH": str(TESTS), "EVALPIPE_NO_SKIPS": "1" if no_skips else "0"}
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no_skips", "-p", "no:cacheprovider",
                           str(tmp_path / "test_probe.py")], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=120)


def test_a_skipped_test_fails_when_no_skips_are_allowed(tmp_path):
    body = "import pytest\n\ndef test_needs_it():\n    pytest.importorskip('no_such_module_anywhere')\n"
    assert pytest_on(tmp_path, body, no_skips=False).returncode == 0
    strict = pytest_on(tmp_path, body, no_skips=True)
    assert strict.returncode == 1 and "skipped where every test must run" in strict.stdout


def test_a_module_skipped_at_collection_fails_when_no_skips_are_allowed(tmp_path):
    body = "import pytest\npytest.importorskip('no_such_module_anywhere')\n\ndef test_x():\n    pass\n"
    assert pytest_on(tmp_path, body, no_skips=False).returncode in (0, 5)
    strict = pytest_on(tmp_path, body, no_skips=True)
    assert strict.returncode != 0 and "skipped where every test must run" in strict.stdout
