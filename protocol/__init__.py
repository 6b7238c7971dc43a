"""What the host and its runners agree on, kept apart from both so neither imports the other.

Two things cross the process boundary by agreement rather than by a shared object: the mapping of
SDK events and signals to the messages of ``engine_proto.strategy_pb2`` (``wire``, used in both
directions) and the meaning of a runner's exit status (``ExitCode``, ``BOOT_ERRORS``,
``describe_exit``): the runner exits with a code, the supervisor decides from it whether to
restart. This package depends on ``sdk`` and ``engine_proto`` only. A runner process imports it
from the same code root as ``runner`` and ``sdk`` (``host.supervisor.process.runner_environment``).
"""

from __future__ import annotations

from protocol import wire
from protocol.exitcodes import BOOT_ERRORS, ExitCode, describe_exit

__all__ = ["BOOT_ERRORS", "ExitCode", "describe_exit", "wire"]
