"""The SDK's docs: the reference builds with every reference resolved, and docs/first-strategy.md runs.

The reference test is the CI check of scripts/build_docs.py: pdoc over the public SDK, failing on a
pdoc warning or a reference in backticks it cannot resolve. The page test turns the page into one
script, in the page's order (a block whose first line is ``# path`` is written to that path, every
other Python block runs), runs it in a scratch folder as an author would, then runs the page's
own ``python -m pytest`` command there. tests/integration/test_first_strategy.py runs the page's
``strategy-engine`` commands on the same folder.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from scripts.build_docs import unresolved

ROOT = Path(__file__).resolve().parents[2]
PAGE = ROOT / "docs" / "first-strategy.md"
_FENCE = re.compile(r"^```(\w*)\n(.*?)^```$", re.M | re.S)
_FILE = re.compile(r"# ([\w./-]+\.(?:py|yaml))")

__all__ = ["commands", "env", "materialise"]


def env() -> dict[str, str]:
    """The environment of an author whose Python has the SDK (the checkout on PYTHONPATH)."""
    values = dict(os.environ)
    values["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), values.get("PYTHONPATH")]))
    values.pop("PYTEST_ADDOPTS", None)
    return values


def blocks(text: str) -> list[tuple[str, str]]:
    """(language, body) of each fenced block of a markdown text, in order."""
    return [(match.group(1), match.group(2)) for match in _FENCE.finditer(text)]


def script(text: str) -> str:
    """One Python script doing what the page's blocks do, in order: write the files, run the code."""
    lines = ["from pathlib import Path"]
    for language, body in blocks(text):
        first = body.splitlines()[0] if body.strip() else ""
        target = _FILE.fullmatch(first)
        if language in ("python", "yaml") and target:
            path = target.group(1)
            lines.append(f"Path({path!r}).parent.mkdir(parents=True, exist_ok=True)")
            lines.append(f"Path({path!r}).write_text({body!r})")
        elif language == "python":
            lines.append(body)
    return "\n".join(lines) + "\n"


def commands(text: str, program: str) -> list[list[str]]:
    """The command lines of the page's ``sh`` blocks that start with ``program``, split into words."""
    found = []
    for language, body in blocks(text):
        if language == "sh":
            found += [line.split() for line in body.splitlines() if line.split()[:1] == [program]]
    return found


def materialise(folder: Path) -> subprocess.CompletedProcess[str]:
    """Run the page's script in ``folder``; fail the test with its output if it fails."""
    (folder / "page.py").write_text(script(PAGE.read_text(encoding="utf-8")), encoding="utf-8")
    done = subprocess.run(
        [sys.executable, "page.py"], cwd=folder, env=env(), capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, f"the page's Python failed:\n{done.stdout}\n{done.stderr}"
    return done


class TestReference:
    def test_public_sdk_builds_with_every_reference_resolved(self, tmp_path: Path) -> None:
        """scripts/build_docs.py OUTDIR writes the sdk, sdk.testing and sdk.indicators pages and exits 0."""
        out = tmp_path / "site"
        done = subprocess.run(
            [sys.executable, "scripts/build_docs.py", str(out)],
            cwd=ROOT, env=env(), capture_output=True, text=True, timeout=300,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        assert "sdk, sdk.testing, sdk.indicators" in done.stdout
        pages = {path.relative_to(out).as_posix() for path in out.rglob("*.html")}
        assert {"index.html", "sdk.html", "sdk/testing.html", "sdk/indicators.html"} <= pages
        assert "BollingerBands" in (out / "sdk" / "indicators.html").read_text()
        assert "FillModel" in (out / "sdk" / "testing.html").read_text()
        assert "StrategyConfig" in (out / "sdk.html").read_text()

    def test_a_broken_reference_fails_the_build(self, tmp_path: Path) -> None:
        """A docstring naming `sdk.Nope` and `Missing` makes the build exit 1, naming both and the module;
        `sdk.Signal`, documented beside it, resolves."""
        (tmp_path / "docbroken.py").write_text(
            '"""Uses `sdk.Signal` (fine), `sdk.Nope` and `Missing`; `quantity` is only a field name."""\n'
        )
        modules = ["--modules", "sdk", "!sdk\\..*", "docbroken"]
        done = subprocess.run(
            [sys.executable, str(ROOT / "scripts" / "build_docs.py"), str(tmp_path / "site"), *modules],
            cwd=tmp_path, env=env() | {"PYTHONPATH": f"{tmp_path}{os.pathsep}{ROOT}"}, capture_output=True, text=True,
            timeout=300,
        )  # fmt: skip
        assert done.returncode == 1
        assert "docbroken: `sdk.Nope` does not resolve" in done.stderr
        assert "docbroken: `Missing` does not resolve" in done.stderr
        assert "quantity" not in done.stderr and "sdk.Signal`" not in done.stderr

    @pytest.mark.parametrize(
        ("html", "expected"),
        [
            ("<p><code>Foo</code> and <code><a href='#x'>Bar</a></code></p>", ["Foo"]),
            ("<p><code>sdk.nothing</code> <code>Foo.bar</code> <code>Foo.bar</code></p>", ["sdk.nothing", "Foo.bar"]),
            (
                "<p><code>quantity</code> <code>accepted</code> <code>ValueError</code> <code>SMA(period=2)</code></p>",
                [],
            ),
            ("<pre><code>Missing(1)\nOther</code></pre><div class='pdoc-code'><pre><code>Foo</code></pre></div>", []),
        ],
    )
    def test_what_counts_as_a_reference(self, html: str, expected: list[str]) -> None:
        """Capitalised and sdk.-dotted names in inline code are references; fields, builtins, calls and
        code blocks are not; each unresolved one is named once."""
        assert unresolved(html) == expected


class TestFirstStrategyPage:
    def test_page_code_runs_and_its_tests_pass(self, tmp_path: Path) -> None:
        """The page's blocks, run in order in a scratch folder, write the package and data and try it;
        then the page's pytest command passes the page's tests."""
        tried = materialise(tmp_path)
        assert re.search(r"^\d+ fills, position [+-][\d.]+, realized [+-][\d.]+$", tried.stdout, re.M), tried.stdout
        assert (tmp_path / "plugins" / "sma_cross" / "strategy.py").is_file()
        assert (tmp_path / "candles.jsonl").read_text().count("\n") == 600
        [pytest_line] = commands(PAGE.read_text(encoding="utf-8"), "python")
        done = subprocess.run(
            [sys.executable, *pytest_line[1:], "-p", "no:cacheprovider"],
            cwd=tmp_path, env=env(), capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        assert done.returncode == 0, done.stdout + done.stderr
        assert "4 passed" in done.stdout

    def test_page_names_its_commands(self) -> None:
        """The page tells the author to check, backtest and replay the plugin with strategy-engine."""
        lines = [" ".join(words) for words in commands(PAGE.read_text(encoding="utf-8"), "strategy-engine")]
        assert lines == [
            "strategy-engine check-plugin plugins/sma_cross",
            "strategy-engine backtest --config config.yaml --data candles.jsonl",
            "strategy-engine run --config config.yaml --replay candles.jsonl",
        ]


class TestPluginsReadme:
    def test_the_breakout_example_and_its_tests_run(self, tmp_path: Path) -> None:
        """plugins/README.md's breakout package (config, strategy, hook, tests), written where its blocks
        say, passes its tests with pytest, as the README tells the author to run them."""
        readme = (ROOT / "plugins" / "README.md").read_text(encoding="utf-8")
        written = []
        for language, body in blocks(readme):
            target = _FILE.fullmatch(body.splitlines()[0]) if language == "python" and body.strip() else None
            if target and target.group(1).startswith("plugins/breakout/"):
                path = tmp_path / target.group(1)
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(body)
                written.append(target.group(1))
        assert sorted(written) == [
            "plugins/breakout/__init__.py", "plugins/breakout/config.py", "plugins/breakout/strategy.py",
            "plugins/breakout/tests/test_breakout.py",
        ]  # fmt: skip
        (tmp_path / "plugins" / "breakout" / "tests" / "__init__.py").write_text("")
        done = subprocess.run(
            [sys.executable, "-m", "pytest", "plugins/breakout", "-q", "-p", "no:cacheprovider"],
            cwd=tmp_path, env=env(), capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        assert done.returncode == 0, done.stdout + done.stderr
        assert "2 passed" in done.stdout
