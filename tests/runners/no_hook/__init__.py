"""A plugin package that forgot to implement the hook."""


def strategy_engine_strategies() -> list[object]:
    return []
