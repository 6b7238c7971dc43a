"""PluginWatcher with a real watchdog Observer on a temp plugins dir: what edits yield, and what yields nothing.

"Nothing" is asserted without sleeping: after the edit that must yield nothing, a real change is
made to another package (the sentinel) and awaited. Events reach the loop in the order the kernel
saw them and a package settles no later than one whose events came after it, so once the
sentinel is yielded, anything the earlier edit would have caused has been yielded before it.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from host.supervisor.watcher import Change, ConfigChange, PackageChange, PluginWatcher, WatcherError, package_digest
from tests.helpers import wait_until

pytestmark = [pytest.mark.integration, pytest.mark.timeout(10)]


def make_package(root: Path, name: str) -> Path:
    package = root / name
    (package / "sub").mkdir(parents=True)
    (package / "__init__.py").write_text("from . import strategy, sub\n")
    (package / "strategy.py").write_text("WINDOW = 20\n")
    (package / "sub" / "__init__.py").write_text("from . import helpers\n")
    (package / "sub" / "helpers.py").write_text("def mid(a, b):\n    return (a + b) / 2\n")
    return package


class Watch:
    """A started watcher, a task collecting what it yields, and the sentinel edit."""

    def __init__(self, watcher: PluginWatcher, plugins: Path, config: Path) -> None:
        self.watcher = watcher
        self.plugins = plugins
        self.config = config
        self.seen: list[Change] = []
        self._sentinels = 0
        self.collector = asyncio.create_task(self._collect())

    async def _collect(self) -> None:
        async for change in self.watcher.changes():
            self.seen.append(change)

    async def next_change(self, count: int = 1) -> list[Change]:
        """Wait until ``count`` more changes were yielded; return them."""
        start = len(self.seen)
        await wait_until(lambda: len(self.seen) >= start + count, timeout=4)
        return self.seen[start:]

    async def sentinel(self) -> list[Change]:
        """Change package ``beta`` for real; return what was yielded from now up to and including that."""
        start = len(self.seen)
        self._sentinels += 1
        (self.plugins / "beta" / "strategy.py").write_text(f"WINDOW = {100 + self._sentinels}\n")
        digest = package_digest(self.plugins / "beta")
        expected = PackageChange("beta", "changed", digest)
        await wait_until(lambda: expected in self.seen, timeout=4)
        return self.seen[start : self.seen.index(expected) + 1]


@pytest.fixture
def plugins(tmp_path: Path) -> Path:
    root = tmp_path / "plugins"
    root.mkdir()
    (root / "conftest.py").write_text("")
    make_package(root, "alpha")
    make_package(root, "beta")
    return root


@pytest.fixture
async def watch(plugins: Path, tmp_path: Path) -> AsyncIterator[Watch]:
    config = tmp_path / "config.yaml"
    config.write_text("engine:\n  mode: simulation\n")
    watcher = PluginWatcher(plugins, config_path=config)
    await watcher.start()
    state = Watch(watcher, plugins, config)
    yield state
    await watcher.stop()
    async with asyncio.timeout(2):
        await state.collector


def only_sentinel(changes: list[Change]) -> bool:
    return [getattr(c, "package", None) for c in changes] == ["beta"]


class TestPluginWatcher:
    async def test_start_alone_yields_nothing(self, watch: Watch) -> None:
        """Existing packages are the baseline: starting the watcher yields no change."""
        assert only_sentinel(await watch.sentinel())

    async def test_edit_yields_one_change_after_quiet(self, watch: Watch) -> None:
        """Editing a module yields one 'changed' with the new digest, after the quiet period."""
        loop = asyncio.get_running_loop()
        saved_at = loop.time()
        (watch.plugins / "alpha" / "strategy.py").write_text("WINDOW = 21\n")
        [change] = await watch.next_change()
        assert loop.time() - saved_at >= 0.5
        assert change == PackageChange("alpha", "changed", package_digest(watch.plugins / "alpha"))
        assert only_sentinel(await watch.sentinel())

    async def test_burst_of_writes_yields_exactly_one_change(self, watch: Watch) -> None:
        """Twenty writes over ~0.3 s are merged into one change carrying the final digest."""
        target = watch.plugins / "alpha" / "sub" / "helpers.py"
        for i in range(20):
            target.write_text(f"STEP = {i}\n")
            await asyncio.sleep(0.015)  # spread the burst; not a wait before an assertion
        [change] = await watch.next_change()
        assert change == PackageChange("alpha", "changed", package_digest(watch.plugins / "alpha"))
        assert only_sentinel(await watch.sentinel())

    async def test_touch_and_same_bytes_yield_nothing(self, watch: Watch) -> None:
        """Touching a file or rewriting it with the same bytes leaves the digest alone: nothing."""
        target = watch.plugins / "alpha" / "strategy.py"
        target.touch()
        target.write_bytes(target.read_bytes())
        watch.config.write_bytes(watch.config.read_bytes())
        assert only_sentinel(await watch.sentinel())

    async def test_noise_files_yield_nothing(self, watch: Watch) -> None:
        """Swap, backup, temp, dotfiles and bytecode written into a package yield nothing."""
        alpha = watch.plugins / "alpha"
        for name in (".strategy.py.swp", "strategy.py~", "x.tmp", ".hidden", "__pycache__/strategy.cpython-311.pyc"):
            (alpha / name).parent.mkdir(exist_ok=True)
            (alpha / name).write_text("noise")
        (watch.plugins / "NOTES.md").write_text("top-level files are no package")
        assert only_sentinel(await watch.sentinel())

    async def test_importing_the_package_yields_nothing(self, watch: Watch) -> None:
        """Importing with bytecode writing on fills __pycache__ and opens every file: nothing."""
        env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-c", "import alpha, alpha.sub.helpers", cwd=watch.plugins, env=env
        )
        assert await proc.wait() == 0
        assert list((watch.plugins / "alpha" / "sub" / "__pycache__").glob("helpers.*.pyc"))
        assert only_sentinel(await watch.sentinel())

    async def test_editor_save_via_swap_and_rename_yields_one_change(self, watch: Watch) -> None:
        """An editor writing a swap file then renaming it over the module yields one change."""
        alpha = watch.plugins / "alpha"
        swap = alpha / ".strategy.py.swp"
        swap.write_text("WINDOW = 34\n")
        os.replace(swap, alpha / "strategy.py")
        [change] = await watch.next_change()
        assert change == PackageChange("alpha", "changed", package_digest(alpha))
        assert only_sentinel(await watch.sentinel())

    async def test_new_package_is_added_once_init_exists(self, watch: Watch) -> None:
        """A new folder yields nothing until its __init__.py appears, then one 'added'."""
        gamma = watch.plugins / "gamma"
        gamma.mkdir()
        (gamma / "strategy.py").write_text("WINDOW = 5\n")
        assert only_sentinel(await watch.sentinel())
        (gamma / "__init__.py").write_text("from . import strategy\n")
        [change] = await watch.next_change()
        assert change == PackageChange("gamma", "added", package_digest(gamma))

    async def test_copied_in_package_is_added(self, watch: Watch, tmp_path: Path) -> None:
        """A whole package moved into plugins/ at once is 'added'."""
        staged = make_package(tmp_path / "staging", "delta")
        staged.rename(watch.plugins / "delta")
        [change] = await watch.next_change()
        assert change == PackageChange("delta", "added", package_digest(watch.plugins / "delta"))

    async def test_deleted_package_is_removed(self, watch: Watch) -> None:
        """Deleting a package folder yields 'removed' with no digest."""
        shutil.rmtree(watch.plugins / "alpha")
        [change] = await watch.next_change()
        assert change == PackageChange("alpha", "removed", None)

    async def test_renamed_package_is_removed_and_added(self, watch: Watch) -> None:
        """Renaming a package folder removes the old name and adds the new one."""
        digest = package_digest(watch.plugins / "alpha")
        (watch.plugins / "alpha").rename(watch.plugins / "omega")
        changes = await watch.next_change(2)
        assert changes == [PackageChange("alpha", "removed", None), PackageChange("omega", "added", digest)]

    async def test_config_change_is_reported(self, watch: Watch) -> None:
        """A content change to the config file yields ConfigChange with its path."""
        watch.config.write_text("engine:\n  mode: live\n")
        [change] = await watch.next_change()
        assert change == ConfigChange(watch.config)

    async def test_stop_ends_changes(self, watch: Watch) -> None:
        """stop() ends the changes() iteration of the consuming task promptly."""
        await watch.watcher.stop()
        await wait_until(watch.collector.done, timeout=2)
        assert watch.collector.exception() is None


class TestPluginWatcherLimits:
    async def test_constant_writes_still_yield_at_max_delay(self, plugins: Path) -> None:
        """A package rewritten without pause yields a change once max_delay_s has passed."""
        async with PluginWatcher(plugins, quiet_s=0.5, max_delay_s=1.0) as watcher:
            seen: list[Change] = []

            async def collect() -> None:
                async for change in watcher.changes():
                    seen.append(change)

            async with asyncio.TaskGroup() as tasks:
                tasks.create_task(collect())
                target = plugins / "alpha" / "strategy.py"
                for i in range(40):
                    target.write_text(f"WINDOW = {i}\n")
                    if seen:
                        break
                    await asyncio.sleep(0.1)  # the writer's pace; never quiet for 0.5 s
                await wait_until(lambda: bool(seen), timeout=3)
                await watcher.stop()
            assert i < 20  # yielded while the writes were still going on
            assert [getattr(c, "package", None) for c in seen][:1] == ["alpha"]

    async def test_missing_plugins_dir_is_a_clear_error(self, tmp_path: Path) -> None:
        """Starting on a missing plugins dir raises WatcherError naming the path."""
        missing = tmp_path / "missing"
        with pytest.raises(WatcherError, match=re.escape(f"plugins dir {missing}: not a directory")):
            await PluginWatcher(missing).start()
