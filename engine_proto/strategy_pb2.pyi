from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class MarketDataType(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    MARKET_DATA_TYPE_UNSPECIFIED: _ClassVar[MarketDataType]
    TICK: _ClassVar[MarketDataType]
    TRADE: _ClassVar[MarketDataType]
    BOOK: _ClassVar[MarketDataType]
    CANDLE: _ClassVar[MarketDataType]

class OrderUpdateStatus(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    ORDER_UPDATE_STATUS_UNSPECIFIED: _ClassVar[OrderUpdateStatus]
    ORDER_ACCEPTED: _ClassVar[OrderUpdateStatus]
    ORDER_PARTIALLY_FILLED: _ClassVar[OrderUpdateStatus]
    ORDER_FILLED: _ClassVar[OrderUpdateStatus]
    ORDER_CANCELLED: _ClassVar[OrderUpdateStatus]
    ORDER_EXPIRED: _ClassVar[OrderUpdateStatus]
    ORDER_REJECTED: _ClassVar[OrderUpdateStatus]

class BootFailureKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    BOOT_FAILURE_KIND_UNSPECIFIED: _ClassVar[BootFailureKind]
    PLUGIN_LOAD: _ClassVar[BootFailureKind]
    CONFIG: _ClassVar[BootFailureKind]
    STRATEGY_START: _ClassVar[BootFailureKind]
    PROTOCOL_VERSION: _ClassVar[BootFailureKind]

class Side(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    SIDE_UNSPECIFIED: _ClassVar[Side]
    BUY: _ClassVar[Side]
    SELL: _ClassVar[Side]

class OrderType(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    ORDER_TYPE_UNSPECIFIED: _ClassVar[OrderType]
    MARKET: _ClassVar[OrderType]
    LIMIT: _ClassVar[OrderType]
    STOP: _ClassVar[OrderType]
    STOP_LIMIT: _ClassVar[OrderType]

class TimeInForce(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    TIME_IN_FORCE_UNSPECIFIED: _ClassVar[TimeInForce]
    GTC: _ClassVar[TimeInForce]
    IOC: _ClassVar[TimeInForce]
    FOK: _ClassVar[TimeInForce]

class LogLevel(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    LOG_LEVEL_UNSPECIFIED: _ClassVar[LogLevel]
    LOG_DEBUG: _ClassVar[LogLevel]
    LOG_INFO: _ClassVar[LogLevel]
    LOG_WARNING: _ClassVar[LogLevel]
    LOG_ERROR: _ClassVar[LogLevel]
MARKET_DATA_TYPE_UNSPECIFIED: MarketDataType
TICK: MarketDataType
TRADE: MarketDataType
BOOK: MarketDataType
CANDLE: MarketDataType
ORDER_UPDATE_STATUS_UNSPECIFIED: OrderUpdateStatus
ORDER_ACCEPTED: OrderUpdateStatus
ORDER_PARTIALLY_FILLED: OrderUpdateStatus
ORDER_FILLED: OrderUpdateStatus
ORDER_CANCELLED: OrderUpdateStatus
ORDER_EXPIRED: OrderUpdateStatus
ORDER_REJECTED: OrderUpdateStatus
BOOT_FAILURE_KIND_UNSPECIFIED: BootFailureKind
PLUGIN_LOAD: BootFailureKind
CONFIG: BootFailureKind
STRATEGY_START: BootFailureKind
PROTOCOL_VERSION: BootFailureKind
SIDE_UNSPECIFIED: Side
BUY: Side
SELL: Side
ORDER_TYPE_UNSPECIFIED: OrderType
MARKET: OrderType
LIMIT: OrderType
STOP: OrderType
STOP_LIMIT: OrderType
TIME_IN_FORCE_UNSPECIFIED: TimeInForce
GTC: TimeInForce
IOC: TimeInForce
FOK: TimeInForce
LOG_LEVEL_UNSPECIFIED: LogLevel
LOG_DEBUG: LogLevel
LOG_INFO: LogLevel
LOG_WARNING: LogLevel
LOG_ERROR: LogLevel

class HostMessage(_message.Message):
    __slots__ = ("batch", "start", "heartbeat", "snapshot_request", "stop")
    BATCH_FIELD_NUMBER: _ClassVar[int]
    START_FIELD_NUMBER: _ClassVar[int]
    HEARTBEAT_FIELD_NUMBER: _ClassVar[int]
    SNAPSHOT_REQUEST_FIELD_NUMBER: _ClassVar[int]
    STOP_FIELD_NUMBER: _ClassVar[int]
    batch: EventBatch
    start: Start
    heartbeat: Heartbeat
    snapshot_request: SnapshotRequest
    stop: Stop
    def __init__(self, batch: _Optional[_Union[EventBatch, _Mapping]] = ..., start: _Optional[_Union[Start, _Mapping]] = ..., heartbeat: _Optional[_Union[Heartbeat, _Mapping]] = ..., snapshot_request: _Optional[_Union[SnapshotRequest, _Mapping]] = ..., stop: _Optional[_Union[Stop, _Mapping]] = ...) -> None: ...

class Start(_message.Message):
    __slots__ = ("restore", "data_lane")
    class RestoreEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: bytes
        def __init__(self, key: _Optional[str] = ..., value: _Optional[bytes] = ...) -> None: ...
    RESTORE_FIELD_NUMBER: _ClassVar[int]
    DATA_LANE_FIELD_NUMBER: _ClassVar[int]
    restore: _containers.ScalarMap[str, bytes]
    data_lane: bool
    def __init__(self, restore: _Optional[_Mapping[str, bytes]] = ..., data_lane: _Optional[bool] = ...) -> None: ...

class EventBatch(_message.Message):
    __slots__ = ("seq", "events", "cut_on_output")
    SEQ_FIELD_NUMBER: _ClassVar[int]
    EVENTS_FIELD_NUMBER: _ClassVar[int]
    CUT_ON_OUTPUT_FIELD_NUMBER: _ClassVar[int]
    seq: int
    events: _containers.RepeatedCompositeFieldContainer[Event]
    cut_on_output: bool
    def __init__(self, seq: _Optional[int] = ..., events: _Optional[_Iterable[_Union[Event, _Mapping]]] = ..., cut_on_output: _Optional[bool] = ...) -> None: ...

class Event(_message.Message):
    __slots__ = ("market", "fill", "position", "timer", "order", "target")
    MARKET_FIELD_NUMBER: _ClassVar[int]
    FILL_FIELD_NUMBER: _ClassVar[int]
    POSITION_FIELD_NUMBER: _ClassVar[int]
    TIMER_FIELD_NUMBER: _ClassVar[int]
    ORDER_FIELD_NUMBER: _ClassVar[int]
    TARGET_FIELD_NUMBER: _ClassVar[int]
    market: MarketData
    fill: Fill
    position: Position
    timer: Timer
    order: OrderUpdate
    target: str
    def __init__(self, market: _Optional[_Union[MarketData, _Mapping]] = ..., fill: _Optional[_Union[Fill, _Mapping]] = ..., position: _Optional[_Union[Position, _Mapping]] = ..., timer: _Optional[_Union[Timer, _Mapping]] = ..., order: _Optional[_Union[OrderUpdate, _Mapping]] = ..., target: _Optional[str] = ...) -> None: ...

class MarketData(_message.Message):
    __slots__ = ("type", "symbol", "timestamp_ns", "sequence", "last_price", "bid_price", "ask_price", "bid_size", "ask_size", "volume", "volume_quote", "bids", "asks", "open", "high", "low", "close", "side")
    TYPE_FIELD_NUMBER: _ClassVar[int]
    SYMBOL_FIELD_NUMBER: _ClassVar[int]
    TIMESTAMP_NS_FIELD_NUMBER: _ClassVar[int]
    SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    LAST_PRICE_FIELD_NUMBER: _ClassVar[int]
    BID_PRICE_FIELD_NUMBER: _ClassVar[int]
    ASK_PRICE_FIELD_NUMBER: _ClassVar[int]
    BID_SIZE_FIELD_NUMBER: _ClassVar[int]
    ASK_SIZE_FIELD_NUMBER: _ClassVar[int]
    VOLUME_FIELD_NUMBER: _ClassVar[int]
    VOLUME_QUOTE_FIELD_NUMBER: _ClassVar[int]
    BIDS_FIELD_NUMBER: _ClassVar[int]
    ASKS_FIELD_NUMBER: _ClassVar[int]
    OPEN_FIELD_NUMBER: _ClassVar[int]
    HIGH_FIELD_NUMBER: _ClassVar[int]
    LOW_FIELD_NUMBER: _ClassVar[int]
    CLOSE_FIELD_NUMBER: _ClassVar[int]
    SIDE_FIELD_NUMBER: _ClassVar[int]
    type: MarketDataType
    symbol: str
    timestamp_ns: int
    sequence: int
    last_price: float
    bid_price: float
    ask_price: float
    bid_size: float
    ask_size: float
    volume: float
    volume_quote: float
    bids: _containers.RepeatedScalarFieldContainer[float]
    asks: _containers.RepeatedScalarFieldContainer[float]
    open: float
    high: float
    low: float
    close: float
    side: Side
    def __init__(self, type: _Optional[_Union[MarketDataType, str]] = ..., symbol: _Optional[str] = ..., timestamp_ns: _Optional[int] = ..., sequence: _Optional[int] = ..., last_price: _Optional[float] = ..., bid_price: _Optional[float] = ..., ask_price: _Optional[float] = ..., bid_size: _Optional[float] = ..., ask_size: _Optional[float] = ..., volume: _Optional[float] = ..., volume_quote: _Optional[float] = ..., bids: _Optional[_Iterable[float]] = ..., asks: _Optional[_Iterable[float]] = ..., open: _Optional[float] = ..., high: _Optional[float] = ..., low: _Optional[float] = ..., close: _Optional[float] = ..., side: _Optional[_Union[Side, str]] = ...) -> None: ...

class Fill(_message.Message):
    __slots__ = ("fill_id", "order_id", "symbol", "side", "price", "quantity", "fee", "timestamp_ns", "strategy", "fee_currency", "reconciled")
    FILL_ID_FIELD_NUMBER: _ClassVar[int]
    ORDER_ID_FIELD_NUMBER: _ClassVar[int]
    SYMBOL_FIELD_NUMBER: _ClassVar[int]
    SIDE_FIELD_NUMBER: _ClassVar[int]
    PRICE_FIELD_NUMBER: _ClassVar[int]
    QUANTITY_FIELD_NUMBER: _ClassVar[int]
    FEE_FIELD_NUMBER: _ClassVar[int]
    TIMESTAMP_NS_FIELD_NUMBER: _ClassVar[int]
    STRATEGY_FIELD_NUMBER: _ClassVar[int]
    FEE_CURRENCY_FIELD_NUMBER: _ClassVar[int]
    RECONCILED_FIELD_NUMBER: _ClassVar[int]
    fill_id: str
    order_id: str
    symbol: str
    side: Side
    price: float
    quantity: float
    fee: float
    timestamp_ns: int
    strategy: str
    fee_currency: str
    reconciled: bool
    def __init__(self, fill_id: _Optional[str] = ..., order_id: _Optional[str] = ..., symbol: _Optional[str] = ..., side: _Optional[_Union[Side, str]] = ..., price: _Optional[float] = ..., quantity: _Optional[float] = ..., fee: _Optional[float] = ..., timestamp_ns: _Optional[int] = ..., strategy: _Optional[str] = ..., fee_currency: _Optional[str] = ..., reconciled: _Optional[bool] = ...) -> None: ...

class Position(_message.Message):
    __slots__ = ("symbol", "quantity", "avg_entry_price", "current_price", "unrealized_pnl", "realized_pnl", "timestamp_ns", "strategy")
    SYMBOL_FIELD_NUMBER: _ClassVar[int]
    QUANTITY_FIELD_NUMBER: _ClassVar[int]
    AVG_ENTRY_PRICE_FIELD_NUMBER: _ClassVar[int]
    CURRENT_PRICE_FIELD_NUMBER: _ClassVar[int]
    UNREALIZED_PNL_FIELD_NUMBER: _ClassVar[int]
    REALIZED_PNL_FIELD_NUMBER: _ClassVar[int]
    TIMESTAMP_NS_FIELD_NUMBER: _ClassVar[int]
    STRATEGY_FIELD_NUMBER: _ClassVar[int]
    symbol: str
    quantity: float
    avg_entry_price: float
    current_price: float
    unrealized_pnl: float
    realized_pnl: float
    timestamp_ns: int
    strategy: str
    def __init__(self, symbol: _Optional[str] = ..., quantity: _Optional[float] = ..., avg_entry_price: _Optional[float] = ..., current_price: _Optional[float] = ..., unrealized_pnl: _Optional[float] = ..., realized_pnl: _Optional[float] = ..., timestamp_ns: _Optional[int] = ..., strategy: _Optional[str] = ...) -> None: ...

class Timer(_message.Message):
    __slots__ = ("name", "timestamp_ns")
    NAME_FIELD_NUMBER: _ClassVar[int]
    TIMESTAMP_NS_FIELD_NUMBER: _ClassVar[int]
    name: str
    timestamp_ns: int
    def __init__(self, name: _Optional[str] = ..., timestamp_ns: _Optional[int] = ...) -> None: ...

class OrderUpdate(_message.Message):
    __slots__ = ("client_order_id", "strategy", "symbol", "side", "slot", "status", "quantity", "filled_quantity", "remaining_quantity", "average_price", "reason", "rule", "timestamp_ns")
    CLIENT_ORDER_ID_FIELD_NUMBER: _ClassVar[int]
    STRATEGY_FIELD_NUMBER: _ClassVar[int]
    SYMBOL_FIELD_NUMBER: _ClassVar[int]
    SIDE_FIELD_NUMBER: _ClassVar[int]
    SLOT_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    QUANTITY_FIELD_NUMBER: _ClassVar[int]
    FILLED_QUANTITY_FIELD_NUMBER: _ClassVar[int]
    REMAINING_QUANTITY_FIELD_NUMBER: _ClassVar[int]
    AVERAGE_PRICE_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    RULE_FIELD_NUMBER: _ClassVar[int]
    TIMESTAMP_NS_FIELD_NUMBER: _ClassVar[int]
    client_order_id: str
    strategy: str
    symbol: str
    side: Side
    slot: str
    status: OrderUpdateStatus
    quantity: float
    filled_quantity: float
    remaining_quantity: float
    average_price: float
    reason: str
    rule: str
    timestamp_ns: int
    def __init__(self, client_order_id: _Optional[str] = ..., strategy: _Optional[str] = ..., symbol: _Optional[str] = ..., side: _Optional[_Union[Side, str]] = ..., slot: _Optional[str] = ..., status: _Optional[_Union[OrderUpdateStatus, str]] = ..., quantity: _Optional[float] = ..., filled_quantity: _Optional[float] = ..., remaining_quantity: _Optional[float] = ..., average_price: _Optional[float] = ..., reason: _Optional[str] = ..., rule: _Optional[str] = ..., timestamp_ns: _Optional[int] = ...) -> None: ...

class Heartbeat(_message.Message):
    __slots__ = ("sent_ns",)
    SENT_NS_FIELD_NUMBER: _ClassVar[int]
    sent_ns: int
    def __init__(self, sent_ns: _Optional[int] = ...) -> None: ...

class SnapshotRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class Stop(_message.Message):
    __slots__ = ("reason",)
    REASON_FIELD_NUMBER: _ClassVar[int]
    reason: str
    def __init__(self, reason: _Optional[str] = ...) -> None: ...

class RunnerMessage(_message.Message):
    __slots__ = ("hello", "ready", "boot_failure", "result", "heartbeat", "snapshot", "stopped", "logs")
    HELLO_FIELD_NUMBER: _ClassVar[int]
    READY_FIELD_NUMBER: _ClassVar[int]
    BOOT_FAILURE_FIELD_NUMBER: _ClassVar[int]
    RESULT_FIELD_NUMBER: _ClassVar[int]
    HEARTBEAT_FIELD_NUMBER: _ClassVar[int]
    SNAPSHOT_FIELD_NUMBER: _ClassVar[int]
    STOPPED_FIELD_NUMBER: _ClassVar[int]
    LOGS_FIELD_NUMBER: _ClassVar[int]
    hello: Hello
    ready: Ready
    boot_failure: BootFailure
    result: BatchResult
    heartbeat: Heartbeat
    snapshot: Snapshot
    stopped: Stopped
    logs: _containers.RepeatedCompositeFieldContainer[StrategyLogs]
    def __init__(self, hello: _Optional[_Union[Hello, _Mapping]] = ..., ready: _Optional[_Union[Ready, _Mapping]] = ..., boot_failure: _Optional[_Union[BootFailure, _Mapping]] = ..., result: _Optional[_Union[BatchResult, _Mapping]] = ..., heartbeat: _Optional[_Union[Heartbeat, _Mapping]] = ..., snapshot: _Optional[_Union[Snapshot, _Mapping]] = ..., stopped: _Optional[_Union[Stopped, _Mapping]] = ..., logs: _Optional[_Iterable[_Union[StrategyLogs, _Mapping]]] = ...) -> None: ...

class StrategyInfo(_message.Message):
    __slots__ = ("id", "name", "plugin", "symbols")
    ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    PLUGIN_FIELD_NUMBER: _ClassVar[int]
    SYMBOLS_FIELD_NUMBER: _ClassVar[int]
    id: str
    name: str
    plugin: str
    symbols: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, id: _Optional[str] = ..., name: _Optional[str] = ..., plugin: _Optional[str] = ..., symbols: _Optional[_Iterable[str]] = ...) -> None: ...

class Hello(_message.Message):
    __slots__ = ("pid", "plugin", "strategies", "sandbox", "data_lane", "protocol_version", "sdk_version")
    PID_FIELD_NUMBER: _ClassVar[int]
    PLUGIN_FIELD_NUMBER: _ClassVar[int]
    STRATEGIES_FIELD_NUMBER: _ClassVar[int]
    SANDBOX_FIELD_NUMBER: _ClassVar[int]
    DATA_LANE_FIELD_NUMBER: _ClassVar[int]
    PROTOCOL_VERSION_FIELD_NUMBER: _ClassVar[int]
    SDK_VERSION_FIELD_NUMBER: _ClassVar[int]
    pid: int
    plugin: str
    strategies: _containers.RepeatedCompositeFieldContainer[StrategyInfo]
    sandbox: _containers.RepeatedScalarFieldContainer[str]
    data_lane: bool
    protocol_version: str
    sdk_version: str
    def __init__(self, pid: _Optional[int] = ..., plugin: _Optional[str] = ..., strategies: _Optional[_Iterable[_Union[StrategyInfo, _Mapping]]] = ..., sandbox: _Optional[_Iterable[str]] = ..., data_lane: _Optional[bool] = ..., protocol_version: _Optional[str] = ..., sdk_version: _Optional[str] = ...) -> None: ...

class Ready(_message.Message):
    __slots__ = ("data_lane",)
    DATA_LANE_FIELD_NUMBER: _ClassVar[int]
    data_lane: bool
    def __init__(self, data_lane: _Optional[bool] = ...) -> None: ...

class BootFailure(_message.Message):
    __slots__ = ("kind", "plugin", "hook", "strategy", "reason", "traceback")
    KIND_FIELD_NUMBER: _ClassVar[int]
    PLUGIN_FIELD_NUMBER: _ClassVar[int]
    HOOK_FIELD_NUMBER: _ClassVar[int]
    STRATEGY_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    TRACEBACK_FIELD_NUMBER: _ClassVar[int]
    kind: BootFailureKind
    plugin: str
    hook: str
    strategy: str
    reason: str
    traceback: str
    def __init__(self, kind: _Optional[_Union[BootFailureKind, str]] = ..., plugin: _Optional[str] = ..., hook: _Optional[str] = ..., strategy: _Optional[str] = ..., reason: _Optional[str] = ..., traceback: _Optional[str] = ...) -> None: ...

class BatchResult(_message.Message):
    __slots__ = ("seq", "outputs", "compute_ns", "consumed")
    SEQ_FIELD_NUMBER: _ClassVar[int]
    OUTPUTS_FIELD_NUMBER: _ClassVar[int]
    COMPUTE_NS_FIELD_NUMBER: _ClassVar[int]
    CONSUMED_FIELD_NUMBER: _ClassVar[int]
    seq: int
    outputs: _containers.RepeatedCompositeFieldContainer[StrategyOutput]
    compute_ns: int
    consumed: int
    def __init__(self, seq: _Optional[int] = ..., outputs: _Optional[_Iterable[_Union[StrategyOutput, _Mapping]]] = ..., compute_ns: _Optional[int] = ..., consumed: _Optional[int] = ...) -> None: ...

class StrategyOutput(_message.Message):
    __slots__ = ("strategy", "signals", "cancels", "errors", "compute_ns", "events", "timers")
    STRATEGY_FIELD_NUMBER: _ClassVar[int]
    SIGNALS_FIELD_NUMBER: _ClassVar[int]
    CANCELS_FIELD_NUMBER: _ClassVar[int]
    ERRORS_FIELD_NUMBER: _ClassVar[int]
    COMPUTE_NS_FIELD_NUMBER: _ClassVar[int]
    EVENTS_FIELD_NUMBER: _ClassVar[int]
    TIMERS_FIELD_NUMBER: _ClassVar[int]
    strategy: str
    signals: _containers.RepeatedCompositeFieldContainer[Signal]
    cancels: _containers.RepeatedCompositeFieldContainer[Cancel]
    errors: _containers.RepeatedCompositeFieldContainer[Error]
    compute_ns: int
    events: int
    timers: _containers.RepeatedCompositeFieldContainer[TimerRequest]
    def __init__(self, strategy: _Optional[str] = ..., signals: _Optional[_Iterable[_Union[Signal, _Mapping]]] = ..., cancels: _Optional[_Iterable[_Union[Cancel, _Mapping]]] = ..., errors: _Optional[_Iterable[_Union[Error, _Mapping]]] = ..., compute_ns: _Optional[int] = ..., events: _Optional[int] = ..., timers: _Optional[_Iterable[_Union[TimerRequest, _Mapping]]] = ...) -> None: ...

class TimerRequest(_message.Message):
    __slots__ = ("name", "every_ns", "at_ns", "anchor_ns")
    NAME_FIELD_NUMBER: _ClassVar[int]
    EVERY_NS_FIELD_NUMBER: _ClassVar[int]
    AT_NS_FIELD_NUMBER: _ClassVar[int]
    ANCHOR_NS_FIELD_NUMBER: _ClassVar[int]
    name: str
    every_ns: int
    at_ns: int
    anchor_ns: int
    def __init__(self, name: _Optional[str] = ..., every_ns: _Optional[int] = ..., at_ns: _Optional[int] = ..., anchor_ns: _Optional[int] = ...) -> None: ...

class Signal(_message.Message):
    __slots__ = ("symbol", "side", "order_type", "quantity", "price", "stop_price", "time_in_force", "priority", "max_slippage", "confidence", "metadata", "slot", "timestamp_ns", "client_order_id")
    class MetadataEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    SYMBOL_FIELD_NUMBER: _ClassVar[int]
    SIDE_FIELD_NUMBER: _ClassVar[int]
    ORDER_TYPE_FIELD_NUMBER: _ClassVar[int]
    QUANTITY_FIELD_NUMBER: _ClassVar[int]
    PRICE_FIELD_NUMBER: _ClassVar[int]
    STOP_PRICE_FIELD_NUMBER: _ClassVar[int]
    TIME_IN_FORCE_FIELD_NUMBER: _ClassVar[int]
    PRIORITY_FIELD_NUMBER: _ClassVar[int]
    MAX_SLIPPAGE_FIELD_NUMBER: _ClassVar[int]
    CONFIDENCE_FIELD_NUMBER: _ClassVar[int]
    METADATA_FIELD_NUMBER: _ClassVar[int]
    SLOT_FIELD_NUMBER: _ClassVar[int]
    TIMESTAMP_NS_FIELD_NUMBER: _ClassVar[int]
    CLIENT_ORDER_ID_FIELD_NUMBER: _ClassVar[int]
    symbol: str
    side: Side
    order_type: OrderType
    quantity: float
    price: float
    stop_price: float
    time_in_force: TimeInForce
    priority: int
    max_slippage: float
    confidence: float
    metadata: _containers.ScalarMap[str, str]
    slot: str
    timestamp_ns: int
    client_order_id: str
    def __init__(self, symbol: _Optional[str] = ..., side: _Optional[_Union[Side, str]] = ..., order_type: _Optional[_Union[OrderType, str]] = ..., quantity: _Optional[float] = ..., price: _Optional[float] = ..., stop_price: _Optional[float] = ..., time_in_force: _Optional[_Union[TimeInForce, str]] = ..., priority: _Optional[int] = ..., max_slippage: _Optional[float] = ..., confidence: _Optional[float] = ..., metadata: _Optional[_Mapping[str, str]] = ..., slot: _Optional[str] = ..., timestamp_ns: _Optional[int] = ..., client_order_id: _Optional[str] = ...) -> None: ...

class Cancel(_message.Message):
    __slots__ = ("slot", "symbol")
    SLOT_FIELD_NUMBER: _ClassVar[int]
    SYMBOL_FIELD_NUMBER: _ClassVar[int]
    slot: str
    symbol: str
    def __init__(self, slot: _Optional[str] = ..., symbol: _Optional[str] = ...) -> None: ...

class Error(_message.Message):
    __slots__ = ("kind", "strategy", "seq", "text", "traceback", "handler", "location")
    KIND_FIELD_NUMBER: _ClassVar[int]
    STRATEGY_FIELD_NUMBER: _ClassVar[int]
    SEQ_FIELD_NUMBER: _ClassVar[int]
    TEXT_FIELD_NUMBER: _ClassVar[int]
    TRACEBACK_FIELD_NUMBER: _ClassVar[int]
    HANDLER_FIELD_NUMBER: _ClassVar[int]
    LOCATION_FIELD_NUMBER: _ClassVar[int]
    kind: str
    strategy: str
    seq: int
    text: str
    traceback: str
    handler: str
    location: str
    def __init__(self, kind: _Optional[str] = ..., strategy: _Optional[str] = ..., seq: _Optional[int] = ..., text: _Optional[str] = ..., traceback: _Optional[str] = ..., handler: _Optional[str] = ..., location: _Optional[str] = ...) -> None: ...

class LogField(_message.Message):
    __slots__ = ("key", "text", "integer", "number", "flag")
    KEY_FIELD_NUMBER: _ClassVar[int]
    TEXT_FIELD_NUMBER: _ClassVar[int]
    INTEGER_FIELD_NUMBER: _ClassVar[int]
    NUMBER_FIELD_NUMBER: _ClassVar[int]
    FLAG_FIELD_NUMBER: _ClassVar[int]
    key: str
    text: str
    integer: int
    number: float
    flag: bool
    def __init__(self, key: _Optional[str] = ..., text: _Optional[str] = ..., integer: _Optional[int] = ..., number: _Optional[float] = ..., flag: _Optional[bool] = ...) -> None: ...

class LogRecord(_message.Message):
    __slots__ = ("level", "event", "fields")
    LEVEL_FIELD_NUMBER: _ClassVar[int]
    EVENT_FIELD_NUMBER: _ClassVar[int]
    FIELDS_FIELD_NUMBER: _ClassVar[int]
    level: LogLevel
    event: str
    fields: _containers.RepeatedCompositeFieldContainer[LogField]
    def __init__(self, level: _Optional[_Union[LogLevel, str]] = ..., event: _Optional[str] = ..., fields: _Optional[_Iterable[_Union[LogField, _Mapping]]] = ...) -> None: ...

class StrategyLogs(_message.Message):
    __slots__ = ("strategy", "records", "dropped")
    STRATEGY_FIELD_NUMBER: _ClassVar[int]
    RECORDS_FIELD_NUMBER: _ClassVar[int]
    DROPPED_FIELD_NUMBER: _ClassVar[int]
    strategy: str
    records: _containers.RepeatedCompositeFieldContainer[LogRecord]
    dropped: int
    def __init__(self, strategy: _Optional[str] = ..., records: _Optional[_Iterable[_Union[LogRecord, _Mapping]]] = ..., dropped: _Optional[int] = ...) -> None: ...

class Snapshot(_message.Message):
    __slots__ = ("states", "errors")
    class StatesEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: bytes
        def __init__(self, key: _Optional[str] = ..., value: _Optional[bytes] = ...) -> None: ...
    STATES_FIELD_NUMBER: _ClassVar[int]
    ERRORS_FIELD_NUMBER: _ClassVar[int]
    states: _containers.ScalarMap[str, bytes]
    errors: _containers.RepeatedCompositeFieldContainer[Error]
    def __init__(self, states: _Optional[_Mapping[str, bytes]] = ..., errors: _Optional[_Iterable[_Union[Error, _Mapping]]] = ...) -> None: ...

class Stopped(_message.Message):
    __slots__ = ("errors",)
    ERRORS_FIELD_NUMBER: _ClassVar[int]
    errors: _containers.RepeatedCompositeFieldContainer[Error]
    def __init__(self, errors: _Optional[_Iterable[_Union[Error, _Mapping]]] = ...) -> None: ...
