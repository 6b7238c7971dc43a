"""The runner: one subprocess that loads a plugin package and serves its strategies to the host."""

from __future__ import annotations

from runner.exitcodes import BOOT_ERRORS, ExitCode, describe_exit

__all__ = ["BOOT_ERRORS", "ExitCode", "describe_exit"]
