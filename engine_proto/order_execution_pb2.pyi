from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class OrderRequest(_message.Message):
    __slots__ = ("signal_id", "strategy_id", "symbol", "side", "order_type", "quantity", "price", "stop_price", "time_in_force", "max_slippage", "priority", "metadata")
    class MetadataEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    SIGNAL_ID_FIELD_NUMBER: _ClassVar[int]
    STRATEGY_ID_FIELD_NUMBER: _ClassVar[int]
    SYMBOL_FIELD_NUMBER: _ClassVar[int]
    SIDE_FIELD_NUMBER: _ClassVar[int]
    ORDER_TYPE_FIELD_NUMBER: _ClassVar[int]
    QUANTITY_FIELD_NUMBER: _ClassVar[int]
    PRICE_FIELD_NUMBER: _ClassVar[int]
    STOP_PRICE_FIELD_NUMBER: _ClassVar[int]
    TIME_IN_FORCE_FIELD_NUMBER: _ClassVar[int]
    MAX_SLIPPAGE_FIELD_NUMBER: _ClassVar[int]
    PRIORITY_FIELD_NUMBER: _ClassVar[int]
    METADATA_FIELD_NUMBER: _ClassVar[int]
    signal_id: str
    strategy_id: str
    symbol: str
    side: str
    order_type: str
    quantity: float
    price: float
    stop_price: float
    time_in_force: str
    max_slippage: float
    priority: int
    metadata: _containers.ScalarMap[str, str]
    def __init__(self, signal_id: _Optional[str] = ..., strategy_id: _Optional[str] = ..., symbol: _Optional[str] = ..., side: _Optional[str] = ..., order_type: _Optional[str] = ..., quantity: _Optional[float] = ..., price: _Optional[float] = ..., stop_price: _Optional[float] = ..., time_in_force: _Optional[str] = ..., max_slippage: _Optional[float] = ..., priority: _Optional[int] = ..., metadata: _Optional[_Mapping[str, str]] = ...) -> None: ...

class OrderResponse(_message.Message):
    __slots__ = ("order_id", "signal_id", "status", "message", "timestamp", "executed_price", "executed_quantity")
    ORDER_ID_FIELD_NUMBER: _ClassVar[int]
    SIGNAL_ID_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    TIMESTAMP_FIELD_NUMBER: _ClassVar[int]
    EXECUTED_PRICE_FIELD_NUMBER: _ClassVar[int]
    EXECUTED_QUANTITY_FIELD_NUMBER: _ClassVar[int]
    order_id: str
    signal_id: str
    status: str
    message: str
    timestamp: int
    executed_price: float
    executed_quantity: float
    def __init__(self, order_id: _Optional[str] = ..., signal_id: _Optional[str] = ..., status: _Optional[str] = ..., message: _Optional[str] = ..., timestamp: _Optional[int] = ..., executed_price: _Optional[float] = ..., executed_quantity: _Optional[float] = ...) -> None: ...

class BatchOrderRequest(_message.Message):
    __slots__ = ("orders",)
    ORDERS_FIELD_NUMBER: _ClassVar[int]
    orders: _containers.RepeatedCompositeFieldContainer[OrderRequest]
    def __init__(self, orders: _Optional[_Iterable[_Union[OrderRequest, _Mapping]]] = ...) -> None: ...

class BatchOrderResponse(_message.Message):
    __slots__ = ("responses", "accepted_count", "rejected_count")
    RESPONSES_FIELD_NUMBER: _ClassVar[int]
    ACCEPTED_COUNT_FIELD_NUMBER: _ClassVar[int]
    REJECTED_COUNT_FIELD_NUMBER: _ClassVar[int]
    responses: _containers.RepeatedCompositeFieldContainer[OrderResponse]
    accepted_count: int
    rejected_count: int
    def __init__(self, responses: _Optional[_Iterable[_Union[OrderResponse, _Mapping]]] = ..., accepted_count: _Optional[int] = ..., rejected_count: _Optional[int] = ...) -> None: ...

class CancelOrderRequest(_message.Message):
    __slots__ = ("order_id", "strategy_id", "reason", "signal_id")
    ORDER_ID_FIELD_NUMBER: _ClassVar[int]
    STRATEGY_ID_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    SIGNAL_ID_FIELD_NUMBER: _ClassVar[int]
    order_id: str
    strategy_id: str
    reason: str
    signal_id: str
    def __init__(self, order_id: _Optional[str] = ..., strategy_id: _Optional[str] = ..., reason: _Optional[str] = ..., signal_id: _Optional[str] = ...) -> None: ...

class CancelOrderResponse(_message.Message):
    __slots__ = ("order_id", "status", "message", "timestamp", "signal_id")
    ORDER_ID_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    TIMESTAMP_FIELD_NUMBER: _ClassVar[int]
    SIGNAL_ID_FIELD_NUMBER: _ClassVar[int]
    order_id: str
    status: str
    message: str
    timestamp: int
    signal_id: str
    def __init__(self, order_id: _Optional[str] = ..., status: _Optional[str] = ..., message: _Optional[str] = ..., timestamp: _Optional[int] = ..., signal_id: _Optional[str] = ...) -> None: ...

class OrderStatusRequest(_message.Message):
    __slots__ = ("order_id", "signal_id")
    ORDER_ID_FIELD_NUMBER: _ClassVar[int]
    SIGNAL_ID_FIELD_NUMBER: _ClassVar[int]
    order_id: str
    signal_id: str
    def __init__(self, order_id: _Optional[str] = ..., signal_id: _Optional[str] = ...) -> None: ...

class OrderStatusResponse(_message.Message):
    __slots__ = ("order_id", "status", "filled_quantity", "remaining_quantity", "average_price", "timestamp", "message", "signal_id")
    ORDER_ID_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    FILLED_QUANTITY_FIELD_NUMBER: _ClassVar[int]
    REMAINING_QUANTITY_FIELD_NUMBER: _ClassVar[int]
    AVERAGE_PRICE_FIELD_NUMBER: _ClassVar[int]
    TIMESTAMP_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    SIGNAL_ID_FIELD_NUMBER: _ClassVar[int]
    order_id: str
    status: str
    filled_quantity: float
    remaining_quantity: float
    average_price: float
    timestamp: int
    message: str
    signal_id: str
    def __init__(self, order_id: _Optional[str] = ..., status: _Optional[str] = ..., filled_quantity: _Optional[float] = ..., remaining_quantity: _Optional[float] = ..., average_price: _Optional[float] = ..., timestamp: _Optional[int] = ..., message: _Optional[str] = ..., signal_id: _Optional[str] = ...) -> None: ...
