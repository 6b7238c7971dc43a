"""The watcher's pure core: which paths belong to a package, the package digest, the debouncer."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from host.supervisor.watcher import Debouncer, PackageChange, classify, is_noise, package_digest, package_of
from tests.helpers import ManualClock


@pytest.fixture
def pkg(tmp_path: Path) -> Path:
    root = tmp_path / "plugins" / "momentum"
    (root / "sub").mkdir(parents=True)
    (root / "__init__.py").write_text("from .strategy import Momentum\n")
    (root / "strategy.py").write_text("class Momentum: ...\n")
    (root / "sub" / "__init__.py").write_text("")
    (root / "params.yaml").write_text("window: 20\n")
    return root


NOISE = [
    "__pycache__/strategy.cpython-311.pyc",
    ".strategy.py.swp",
    ".strategy.py.swx",
    "strategy.py.swp",
    "strategy.py~",
    "~lock.params.yaml#",
    "strategy.pyc",
    "download.tmp",
    ".git/HEAD",
    ".mypy_cache/x.json",
    "sub/__pycache__/x.pyc",
]


class TestIsNoise:
    @pytest.mark.parametrize(
        "name", ["__pycache__", ".hidden", ".x.py.swp", "x.swp", "x.swx", "~x", "x~", "x.pyc", "x.tmp"]
    )
    def test_noise_names(self, name: str) -> None:
        """Caches, dotfiles, swap, backup, bytecode and temp files are noise."""
        assert is_noise(name)

    @pytest.mark.parametrize("name", ["__init__.py", "strategy.py", "params.yaml", "data.csv", "sub"])
    def test_source_names(self, name: str) -> None:
        """Ordinary source and data files are not noise."""
        assert not is_noise(name)


class TestPackageOf:
    PLUGINS = Path("/srv/plugins")

    @pytest.mark.parametrize(
        ("changed", "expected"),
        [
            ("momentum/strategy.py", "momentum"),
            ("momentum/sub/deep/x.py", "momentum"),
            ("momentum/params.yaml", "momentum"),
            ("momentum", "momentum"),
            ("market_making/__init__.py", "market_making"),
        ],
    )
    def test_maps_to_top_level_folder(self, changed: str, expected: str) -> None:
        """Any path inside a package folder maps to that folder's name."""
        assert package_of(self.PLUGINS, self.PLUGINS / changed) == expected

    @pytest.mark.parametrize("noise", NOISE)
    def test_noise_maps_to_nothing(self, noise: str) -> None:
        """Noise anywhere along the path maps to no package."""
        assert package_of(self.PLUGINS, self.PLUGINS / "momentum" / noise) is None

    @pytest.mark.parametrize(
        "changed", ["conftest.py", "README.md", "__pycache__/conftest.pyc", ".pytest_cache/v", "my-pkg/x.py", ""]
    )
    def test_top_level_files_and_non_packages_map_to_nothing(self, changed: str) -> None:
        """Files directly in plugins/, the folder itself and non-identifier folders are no package."""
        assert package_of(self.PLUGINS, self.PLUGINS / changed) is None

    def test_outside_plugins_dir_maps_to_nothing(self) -> None:
        """A path outside plugins/ (a sibling with the same prefix included) maps to nothing."""
        assert package_of(self.PLUGINS, Path("/srv/plugins2/momentum/x.py")) is None
        assert package_of(self.PLUGINS, Path("/srv/config.yaml")) is None


class TestPackageDigest:
    def test_stable_for_unchanged_package(self, pkg: Path) -> None:
        """Digesting twice without a change gives the same hex sha256."""
        first = package_digest(pkg)
        assert first is not None and len(first) == 64
        assert package_digest(pkg) == first

    def test_none_without_init(self, pkg: Path) -> None:
        """A folder without __init__.py is not a package yet."""
        (pkg / "__init__.py").unlink()
        assert package_digest(pkg) is None

    def test_none_when_folder_is_gone(self, tmp_path: Path) -> None:
        """A missing folder has no digest."""
        assert package_digest(tmp_path / "gone") is None

    def test_rewriting_same_bytes_keeps_digest(self, pkg: Path) -> None:
        """Only content counts: rewriting identical bytes changes nothing."""
        before = package_digest(pkg)
        (pkg / "strategy.py").write_text("class Momentum: ...\n")
        assert package_digest(pkg) == before

    @pytest.mark.parametrize("noise", NOISE)
    def test_noise_writes_keep_digest(self, pkg: Path, noise: str) -> None:
        """Bytecode, swap, backup and dotfile writes do not change the digest."""
        before = package_digest(pkg)
        target = pkg / noise
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(b"\x00noise")
        assert package_digest(pkg) == before

    def test_content_edit_changes_digest(self, pkg: Path) -> None:
        """Editing a source file changes the digest."""
        before = package_digest(pkg)
        (pkg / "strategy.py").write_text("class Momentum:\n    window = 21\n")
        assert package_digest(pkg) != before

    def test_data_file_edit_changes_digest(self, pkg: Path) -> None:
        """Non-Python files that are not noise are part of the source."""
        before = package_digest(pkg)
        (pkg / "params.yaml").write_text("window: 21\n")
        assert package_digest(pkg) != before

    def test_added_module_changes_digest(self, pkg: Path) -> None:
        """Adding a module, even an empty one, changes the digest."""
        before = package_digest(pkg)
        (pkg / "sub" / "extra.py").write_text("")
        assert package_digest(pkg) != before

    def test_deleted_module_changes_digest(self, pkg: Path) -> None:
        """Deleting a module changes the digest."""
        before = package_digest(pkg)
        (pkg / "sub" / "__init__.py").unlink()
        assert package_digest(pkg) != before

    def test_rename_changes_digest(self, pkg: Path) -> None:
        """Renaming a module with the same content changes the digest (the path is hashed)."""
        before = package_digest(pkg)
        (pkg / "strategy.py").rename(pkg / "strategy2.py")
        assert package_digest(pkg) != before

    def test_moving_bytes_between_files_changes_digest(self, pkg: Path) -> None:
        """Sizes are hashed, so bytes moving from one file to the next are a change."""
        (pkg / "a.py").write_text("xy")
        (pkg / "b.py").write_text("z")
        before = package_digest(pkg)
        (pkg / "a.py").write_text("x")
        (pkg / "b.py").write_text("yz")
        assert package_digest(pkg) != before

    def test_same_tree_elsewhere_has_same_digest(self, pkg: Path, tmp_path: Path) -> None:
        """The digest depends on relative paths only, not on where the package lives."""
        copy = tmp_path / "elsewhere" / "momentum"
        for file in sorted(pkg.rglob("*")):
            target = copy / file.relative_to(pkg)
            if file.is_dir():
                target.mkdir(parents=True, exist_ok=True)
            else:
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(file.read_bytes())
        assert package_digest(copy) == package_digest(pkg)


class TestClassify:
    @pytest.mark.parametrize(
        ("before", "after", "expected"),
        [
            (None, "d1", PackageChange("p", "added", "d1")),
            ("d1", "d2", PackageChange("p", "changed", "d2")),
            ("d1", None, PackageChange("p", "removed", None)),
            ("d1", "d1", None),
            (None, None, None),
        ],
    )
    def test_digest_transitions(self, before: str | None, after: str | None, expected: PackageChange | None) -> None:
        """Appearing is added, differing is changed, vanishing is removed, equal is nothing."""
        assert classify("p", before, after) == expected


class TestDebouncer:
    @pytest.fixture
    def clock(self) -> ManualClock:
        return ManualClock(100.0)

    def test_nothing_due_before_quiet(self, clock: ManualClock) -> None:
        """A package is not due until it has been quiet for quiet_s."""
        debouncer: Debouncer[str] = Debouncer(quiet_s=0.5)
        debouncer.note("momentum", clock.monotonic())
        clock.advance(0.49)
        assert debouncer.due(clock.monotonic()) == []

    def test_due_once_after_quiet(self, clock: ManualClock) -> None:
        """After quiet_s it is due exactly once, then forgotten."""
        debouncer: Debouncer[str] = Debouncer(quiet_s=0.5)
        debouncer.note("momentum", clock.monotonic())
        clock.advance(0.5)
        assert debouncer.due(clock.monotonic()) == ["momentum"]
        assert debouncer.due(clock.monotonic()) == []
        assert len(debouncer) == 0

    def test_events_restart_quiet_period(self, clock: ManualClock) -> None:
        """Each event pushes the settle time back by quiet_s."""
        debouncer: Debouncer[str] = Debouncer(quiet_s=0.5)
        for _ in range(5):
            debouncer.note("momentum", clock.monotonic())
            clock.advance(0.3)
            assert debouncer.due(clock.monotonic()) == []
        clock.advance(0.2)
        assert debouncer.due(clock.monotonic()) == ["momentum"]

    def test_max_delay_caps_a_constant_stream(self, clock: ManualClock) -> None:
        """A package touched without pause is still due max_delay_s after its first event."""
        debouncer: Debouncer[str] = Debouncer(quiet_s=0.5, max_delay_s=5.0)
        start = clock.monotonic()
        due_at = None
        while due_at is None and clock.monotonic() - start < 10:
            debouncer.note("momentum", clock.monotonic())
            clock.advance(0.25)  # a binary-exact step, so the sum lands on 5.0 exactly
            if debouncer.due(clock.monotonic()):
                due_at = clock.monotonic() - start
        assert due_at == 5.0

    def test_packages_settle_independently(self, clock: ManualClock) -> None:
        """A busy package does not hold back a quiet one."""
        debouncer: Debouncer[str] = Debouncer(quiet_s=0.5)
        debouncer.note("a", clock.monotonic())
        debouncer.note("b", clock.monotonic())
        clock.advance(0.4)
        debouncer.note("b", clock.monotonic())
        clock.advance(0.1)
        assert debouncer.due(clock.monotonic()) == ["a"]
        clock.advance(0.4)
        assert debouncer.due(clock.monotonic()) == ["b"]

    def test_due_in_first_noted_order(self, clock: ManualClock) -> None:
        """Keys due together come out in the order they were first noted."""
        debouncer: Debouncer[str] = Debouncer(quiet_s=0.5)
        for name in ("c", "a", "b"):
            debouncer.note(name, clock.monotonic())
        clock.advance(1)
        assert debouncer.due(clock.monotonic()) == ["c", "a", "b"]

    def test_next_due(self, clock: ManualClock) -> None:
        """next_due is the earliest settle time, capped by max delay; None when idle."""
        debouncer: Debouncer[str] = Debouncer(quiet_s=0.5, max_delay_s=1.0)
        assert debouncer.next_due() is None
        t0 = clock.monotonic()
        debouncer.note("a", t0)
        assert debouncer.next_due() == pytest.approx(t0 + 0.5)
        clock.advance(0.8)
        debouncer.note("a", clock.monotonic())
        assert debouncer.next_due() == pytest.approx(t0 + 1.0)

    def test_late_timestamp_does_not_rewind(self, clock: ManualClock) -> None:
        """An event noted with an older time does not shorten the quiet period."""
        debouncer: Debouncer[str] = Debouncer(quiet_s=0.5)
        debouncer.note("a", clock.monotonic())
        debouncer.note("a", clock.monotonic() - 1)
        assert debouncer.next_due() == pytest.approx(clock.monotonic() + 0.5)

    @pytest.mark.parametrize(
        ("quiet_s", "max_delay_s", "message"),
        [
            (0.0, 5.0, "quiet_s: must be > 0, got 0.0"),
            (-1.0, 5.0, "quiet_s: must be > 0, got -1.0"),
            (1.0, 0.5, "max_delay_s: must be >= quiet_s (1.0), got 0.5"),
        ],
    )
    def test_rejects_bad_settings(self, quiet_s: float, max_delay_s: float, message: str) -> None:
        """quiet_s must be positive and max_delay_s at least quiet_s; the error names the setting."""
        with pytest.raises(ValueError, match=re.escape(message)):
            Debouncer(quiet_s=quiet_s, max_delay_s=max_delay_s)
