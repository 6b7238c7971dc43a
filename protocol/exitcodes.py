"""Named exit codes of a runner process. The supervisor never restarts a runner on a boot error."""

from __future__ import annotations

from enum import IntEnum

__all__ = ["BOOT_ERRORS", "ExitCode", "describe_exit"]


class ExitCode(IntEnum):
    OK = 0
    # The runner could not start at all: bad argv, no token, sandbox or connection failure.
    BOOT_ERROR = 64
    # The plugin package failed to import or its hooks returned garbage.
    PLUGIN_LOAD_ERROR = 65
    # A strategy's config was rejected (unknown key, bad value, unknown strategy name).
    CONFIG_ERROR = 66
    # The host refused the handshake (bad token) or did not complete it in time.
    HANDSHAKE_ERROR = 67
    # A strategy's on_load / on_start raised: it cannot start.
    START_ERROR = 68
    # The host went away (stream closed or parent died): nothing left to serve.
    HOST_GONE = 69
    # The runner itself failed while serving (not a strategy's exception): restartable.
    RUNNER_CRASH = 70


BOOT_ERRORS = frozenset({ExitCode.BOOT_ERROR, ExitCode.PLUGIN_LOAD_ERROR, ExitCode.CONFIG_ERROR, ExitCode.START_ERROR})

_SIGNALS = {
    6: "aborted (SIGABRT)",
    9: "killed (SIGKILL): out of memory, or stopped by the host",
    11: "segmentation fault (SIGSEGV)",
    15: "terminated (SIGTERM)",
    24: "CPU time limit exceeded (SIGXCPU)",
    25: "file size limit exceeded (SIGXFSZ)",
}


def describe_exit(returncode: int) -> str:
    """A human reading of a process return code (negative: killed by that signal)."""
    if returncode < 0:
        return _SIGNALS.get(-returncode, f"killed by signal {-returncode}")
    try:
        return ExitCode(returncode).name.lower()
    except ValueError:
        return f"exited with code {returncode}"
