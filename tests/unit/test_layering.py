"""Which of the engine's packages may import which, read from the source (nothing is imported).

The host and its runners meet only in ``protocol``: the host never imports ``runner``, the runner
never imports ``host``, and ``protocol`` imports neither. ``sdk`` is installable alone, so it
imports none of them.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers import ROOT

# The one exception, named: ``strategy-engine reproduce`` loads a plugin in-process with the runner's
# own loader (one loader, not a copy of it in host/); nothing else of host/ imports that module.
ALLOWED = {("host/reproduce.py", "runner")}

FORBIDDEN = {
    "host": {"runner"},
    "runner": {"host"},
    "protocol": {"host", "runner"},
    "sdk": {"host", "runner", "protocol", "engine_proto"},
}


def _imported_packages(path: Path) -> Iterator[tuple[int, str]]:
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            yield from ((node.lineno, alias.name.split(".")[0]) for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            yield node.lineno, node.module.split(".")[0]


class TestLayering:
    @pytest.mark.parametrize("package", sorted(FORBIDDEN))
    def test_package_imports_only_what_its_layer_allows(self, package: str) -> None:
        """No module of the package imports a package its layer must not depend on."""
        found = [
            f"{path.relative_to(ROOT)}:{line} imports {name}"
            for path in sorted((ROOT / package).rglob("*.py"))
            for line, name in _imported_packages(path)
            if name in FORBIDDEN[package] and (str(path.relative_to(ROOT)), name) not in ALLOWED
        ]
        assert found == []


def test_commands_other_than_live_and_paper_venue_do_not_load_nats() -> None:
    """``strategy-engine`` imports the NATS client (and aiohttp under it, ~0.14 s) only for the two
    commands that talk to NATS: ``run`` live and ``paper-venue`` (the others start faster)."""
    code = "import sys, host.cli; print(sorted(m for m in ('nats', 'aiohttp') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd=ROOT, check=True)
    assert out.stdout.strip() == "[]", out.stdout + out.stderr
