"""Engine configuration: one frozen dataclass per section of the service's camelCase ``config.yaml``.

Model. ``load(path)`` reads a YAML file (no path: the embedded defaults, which run the built-in
strategies in simulation mode) and ``parse(data)`` turns plain data into a ``Config``; both apply the
``STRATEGY_ENGINE_*`` environment overrides (``ENV_OVERRIDES``) after the file. A YAML key is the
camelCase form of its snake_case field (``readTimeout`` -> ``read_timeout``). A missing key, and a
section or strategy entry left empty (null), takes the default written next to the field; a scalar
key left empty is an error. Durations are float seconds, written as Go durations (``500us``,
``1.5s``, ``1h30m``) or plain numbers of seconds.

The Go service's own keys load too (``host.config._go``): each is mapped onto the engine's keys or
accepted and reported as ignored with the reason; ``Config.key_report`` says how every key of the
file was taken and ``Config.notes`` lists the mapped and ignored ones.

Everything is checked here, once: an unknown key (with a did-you-mean), a value of the wrong type or
out of range raises ``ConfigError`` naming the full key path, so the components that read a
``Config`` never re-check it. What does not stop the engine but is likely a mistake comes back in
``Config.warnings``. Pure apart from reading the file: the environment is passed in.
"""

from host.config._go import KeyUse
from host.config._reading import ENV_OVERRIDES, load, parse
from host.config._sections import (
    AGGREGATION_MODES,
    LOG_FORMATS,
    LOG_LEVELS,
    LOG_OUTPUTS,
    MARKET_DATA_FORMATS,
    MODES,
    VENUE_PROTOCOLS,
    Config,
    EngineConfig,
    GrpcConfig,
    LoggingConfig,
    MetricsConfig,
    NatsConfig,
    RedisConfig,
    RiskConfig,
    ServerConfig,
    StrategySpec,
)
from host.config._values import ConfigError, parse_duration

__all__ = [
    "Config",
    "ConfigError",
    "KeyUse",
    "ENV_OVERRIDES",
    "load",
    "parse",
    "parse_duration",
    "ServerConfig",
    "RedisConfig",
    "NatsConfig",
    "GrpcConfig",
    "EngineConfig",
    "StrategySpec",
    "RiskConfig",
    "LoggingConfig",
    "MetricsConfig",
    "MODES",
    "AGGREGATION_MODES",
    "LOG_LEVELS",
    "LOG_FORMATS",
    "LOG_OUTPUTS",
    "MARKET_DATA_FORMATS",
    "VENUE_PROTOCOLS",
]
