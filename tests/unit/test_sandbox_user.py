"""Whether the runner's user could reach a path, read from the real file modes (no process switches)."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from host.config import ConfigError
from host.supervisor.process import runner_identity
from runner.sandbox import _may

NOBODY = (65534, 65534)


@pytest.fixture
def open_tmp() -> Iterator[Path]:
    """A folder under /tmp that every user may pass (pytest's own temp root is 0700)."""
    folder = Path(tempfile.mkdtemp(prefix="se-user-"))
    folder.chmod(0o755)
    yield folder
    shutil.rmtree(folder)


class TestRunnerUserPaths:
    def test_open_folder_is_reachable(self, open_tmp: Path) -> None:
        """Every folder on the way passable by others and the target readable: no reason to skip."""
        folder = open_tmp / "plugins" / "mm"
        folder.mkdir(parents=True)
        for path in (open_tmp / "plugins", folder):
            path.chmod(0o755)
        assert _may(folder, *NOBODY, 5) is None

    def test_closed_folder_on_the_way_is_named(self, open_tmp: Path) -> None:
        """A 0700 folder on the way makes the reason name that folder and its mode."""
        closed = open_tmp / "private"
        (closed / "mm").mkdir(parents=True)
        closed.chmod(0o700)
        reason = _may(closed / "mm", *NOBODY, 5)
        assert reason is not None and f"{closed} is drwx------" in reason

    def test_socket_needs_write(self, open_tmp: Path) -> None:
        """A socket file of another owner, mode 0600, is not connectable by the runner's user."""
        path = open_tmp / "link.sock"
        path.write_text("")
        path.chmod(0o600)
        reason = _may(path, *NOBODY, 2)
        assert reason is not None and str(path) in reason


class TestRunnerIdentity:
    def test_name_and_uid_resolve(self) -> None:
        """engine.runnerUser takes a user name or a uid; "" keeps the host's uid."""
        assert runner_identity("nobody") == runner_identity("65534") == NOBODY
        assert runner_identity("") is None

    def test_unknown_user_is_a_config_error(self, tmp_path: Path) -> None:
        """An unknown user is rejected with its key path."""
        from host.app import settings
        from host.config import load

        config = tmp_path / "config.yaml"
        config.write_text("engine:\n  runnerUser: no-such-user-here\n")
        with pytest.raises(ConfigError, match=r"engine\.runnerUser: no user 'no-such-user-here'"):
            settings(load(config, environ={}))
