"""Every module of the package imports first, on its own (no import cycle runs back up).

The default run imports each module first in one fresh interpreter whose ``manifres`` modules
are purged between imports (torch and the third-party packages stay loaded, which keeps it
fast); the slow run starts a new interpreter per module.
"""

from __future__ import annotations

import os
import pkgutil
import subprocess
import sys
from pathlib import Path

import pytest

import manifres

ROOT = Path(manifres.__file__).resolve().parents[1]


def _modules() -> list[str]:
    names = ["manifres"]
    for info in pkgutil.walk_packages(manifres.__path__, prefix="manifres."):
        if ".gallery" in info.name:
            continue
        names.append(info.name)
    return sorted(names)


MODULES = _modules()

_PURGE_LOOP = """
import importlib, sys, traceback
failed = []
for name in sys.argv[1:]:
    for key in [k for k in sys.modules if k == "manifres" or k.startswith("manifres.")]:
        del sys.modules[key]
    try:
        importlib.import_module(name)
    except Exception:
        failed.append(name + ": " + traceback.format_exc().strip().splitlines()[-1])
print("\\n".join(failed))
sys.exit(1 if failed else 0)
"""


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    env.setdefault("GEOMSTATS_BACKEND", "pytorch")
    return env


def test_the_module_list_is_complete():
    assert "manifres.manifolds.so3" in MODULES and "manifres.nn.protocol" in MODULES
    assert len(MODULES) > 40


def test_every_module_imports_first():
    proc = subprocess.run(
        [sys.executable, "-W", "error::DeprecationWarning:manifres", "-c", _PURGE_LOOP, *MODULES],
        capture_output=True,
        text=True,
        env=_env(),
        timeout=600,
    )
    assert proc.returncode == 0, f"modules that fail to import first:\n{proc.stdout}\n{proc.stderr[-2000:]}"


@pytest.mark.slow
@pytest.mark.parametrize("name", MODULES)
def test_module_imports_first_in_a_fresh_interpreter(name):
    proc = subprocess.run(
        [sys.executable, "-c", f"import {name}"], capture_output=True, text=True, env=_env(), timeout=300
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
