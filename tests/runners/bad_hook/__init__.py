"""A plugin package whose hook returns garbage."""

from sdk import hookimpl


@hookimpl
def strategy_engine_strategies() -> int:
    return 42
