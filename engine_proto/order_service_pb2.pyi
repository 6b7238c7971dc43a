from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class OrderSide(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    SIDE_UNSPECIFIED: _ClassVar[OrderSide]
    BUY: _ClassVar[OrderSide]
    SELL: _ClassVar[OrderSide]

class OrderType(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    TYPE_UNSPECIFIED: _ClassVar[OrderType]
    MARKET: _ClassVar[OrderType]
    LIMIT: _ClassVar[OrderType]
    STOP_MARKET: _ClassVar[OrderType]
    STOP_LIMIT: _ClassVar[OrderType]
    POST_ONLY: _ClassVar[OrderType]

class OrderState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    STATE_UNSPECIFIED: _ClassVar[OrderState]
    NEW: _ClassVar[OrderState]
    SUBMITTED: _ClassVar[OrderState]
    PARTIALLY_FILLED: _ClassVar[OrderState]
    FILLED: _ClassVar[OrderState]
    CANCELED: _ClassVar[OrderState]
    REJECTED: _ClassVar[OrderState]
    EXPIRED: _ClassVar[OrderState]

class TimeInForce(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    TIF_UNSPECIFIED: _ClassVar[TimeInForce]
    GTC: _ClassVar[TimeInForce]
    IOC: _ClassVar[TimeInForce]
    FOK: _ClassVar[TimeInForce]
    GTX: _ClassVar[TimeInForce]
SIDE_UNSPECIFIED: OrderSide
BUY: OrderSide
SELL: OrderSide
TYPE_UNSPECIFIED: OrderType
MARKET: OrderType
LIMIT: OrderType
STOP_MARKET: OrderType
STOP_LIMIT: OrderType
POST_ONLY: OrderType
STATE_UNSPECIFIED: OrderState
NEW: OrderState
SUBMITTED: OrderState
PARTIALLY_FILLED: OrderState
FILLED: OrderState
CANCELED: OrderState
REJECTED: OrderState
EXPIRED: OrderState
TIF_UNSPECIFIED: TimeInForce
GTC: TimeInForce
IOC: TimeInForce
FOK: TimeInForce
GTX: TimeInForce

class CreateOrderRequest(_message.Message):
    __slots__ = ("symbol", "side", "type", "quantity", "price", "stop_price", "time_in_force", "client_order_id", "reduce_only", "post_only", "user_id")
    SYMBOL_FIELD_NUMBER: _ClassVar[int]
    SIDE_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    QUANTITY_FIELD_NUMBER: _ClassVar[int]
    PRICE_FIELD_NUMBER: _ClassVar[int]
    STOP_PRICE_FIELD_NUMBER: _ClassVar[int]
    TIME_IN_FORCE_FIELD_NUMBER: _ClassVar[int]
    CLIENT_ORDER_ID_FIELD_NUMBER: _ClassVar[int]
    REDUCE_ONLY_FIELD_NUMBER: _ClassVar[int]
    POST_ONLY_FIELD_NUMBER: _ClassVar[int]
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    symbol: str
    side: OrderSide
    type: OrderType
    quantity: float
    price: float
    stop_price: float
    time_in_force: TimeInForce
    client_order_id: str
    reduce_only: bool
    post_only: bool
    user_id: str
    def __init__(self, symbol: _Optional[str] = ..., side: _Optional[_Union[OrderSide, str]] = ..., type: _Optional[_Union[OrderType, str]] = ..., quantity: _Optional[float] = ..., price: _Optional[float] = ..., stop_price: _Optional[float] = ..., time_in_force: _Optional[_Union[TimeInForce, str]] = ..., client_order_id: _Optional[str] = ..., reduce_only: _Optional[bool] = ..., post_only: _Optional[bool] = ..., user_id: _Optional[str] = ...) -> None: ...

class CreateOrderResponse(_message.Message):
    __slots__ = ("order_id", "client_order_id", "state", "timestamp", "error_message")
    ORDER_ID_FIELD_NUMBER: _ClassVar[int]
    CLIENT_ORDER_ID_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    TIMESTAMP_FIELD_NUMBER: _ClassVar[int]
    ERROR_MESSAGE_FIELD_NUMBER: _ClassVar[int]
    order_id: str
    client_order_id: str
    state: OrderState
    timestamp: int
    error_message: str
    def __init__(self, order_id: _Optional[str] = ..., client_order_id: _Optional[str] = ..., state: _Optional[_Union[OrderState, str]] = ..., timestamp: _Optional[int] = ..., error_message: _Optional[str] = ...) -> None: ...

class CancelOrderRequest(_message.Message):
    __slots__ = ("order_id", "symbol")
    ORDER_ID_FIELD_NUMBER: _ClassVar[int]
    SYMBOL_FIELD_NUMBER: _ClassVar[int]
    order_id: str
    symbol: str
    def __init__(self, order_id: _Optional[str] = ..., symbol: _Optional[str] = ...) -> None: ...

class CancelOrderResponse(_message.Message):
    __slots__ = ("order_id", "state", "timestamp", "error_message")
    ORDER_ID_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    TIMESTAMP_FIELD_NUMBER: _ClassVar[int]
    ERROR_MESSAGE_FIELD_NUMBER: _ClassVar[int]
    order_id: str
    state: OrderState
    timestamp: int
    error_message: str
    def __init__(self, order_id: _Optional[str] = ..., state: _Optional[_Union[OrderState, str]] = ..., timestamp: _Optional[int] = ..., error_message: _Optional[str] = ...) -> None: ...

class GetOrderRequest(_message.Message):
    __slots__ = ("order_id",)
    ORDER_ID_FIELD_NUMBER: _ClassVar[int]
    order_id: str
    def __init__(self, order_id: _Optional[str] = ...) -> None: ...

class GetOrderResponse(_message.Message):
    __slots__ = ("order",)
    ORDER_FIELD_NUMBER: _ClassVar[int]
    order: Order
    def __init__(self, order: _Optional[_Union[Order, _Mapping]] = ...) -> None: ...

class GetOrdersRequest(_message.Message):
    __slots__ = ("symbol", "state", "start_time", "end_time", "limit")
    SYMBOL_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    START_TIME_FIELD_NUMBER: _ClassVar[int]
    END_TIME_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    symbol: str
    state: OrderState
    start_time: int
    end_time: int
    limit: int
    def __init__(self, symbol: _Optional[str] = ..., state: _Optional[_Union[OrderState, str]] = ..., start_time: _Optional[int] = ..., end_time: _Optional[int] = ..., limit: _Optional[int] = ...) -> None: ...

class GetOrdersResponse(_message.Message):
    __slots__ = ("orders",)
    ORDERS_FIELD_NUMBER: _ClassVar[int]
    orders: _containers.RepeatedCompositeFieldContainer[Order]
    def __init__(self, orders: _Optional[_Iterable[_Union[Order, _Mapping]]] = ...) -> None: ...

class StreamOrderUpdatesRequest(_message.Message):
    __slots__ = ("user_id", "symbols")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    SYMBOLS_FIELD_NUMBER: _ClassVar[int]
    user_id: str
    symbols: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, user_id: _Optional[str] = ..., symbols: _Optional[_Iterable[str]] = ...) -> None: ...

class Order(_message.Message):
    __slots__ = ("order_id", "client_order_id", "symbol", "side", "type", "state", "time_in_force", "quantity", "price", "stop_price", "filled_quantity", "average_price", "fee", "fee_asset", "created_at", "updated_at", "user_id", "reduce_only", "post_only", "exchange_order_id")
    ORDER_ID_FIELD_NUMBER: _ClassVar[int]
    CLIENT_ORDER_ID_FIELD_NUMBER: _ClassVar[int]
    SYMBOL_FIELD_NUMBER: _ClassVar[int]
    SIDE_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    TIME_IN_FORCE_FIELD_NUMBER: _ClassVar[int]
    QUANTITY_FIELD_NUMBER: _ClassVar[int]
    PRICE_FIELD_NUMBER: _ClassVar[int]
    STOP_PRICE_FIELD_NUMBER: _ClassVar[int]
    FILLED_QUANTITY_FIELD_NUMBER: _ClassVar[int]
    AVERAGE_PRICE_FIELD_NUMBER: _ClassVar[int]
    FEE_FIELD_NUMBER: _ClassVar[int]
    FEE_ASSET_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    UPDATED_AT_FIELD_NUMBER: _ClassVar[int]
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    REDUCE_ONLY_FIELD_NUMBER: _ClassVar[int]
    POST_ONLY_FIELD_NUMBER: _ClassVar[int]
    EXCHANGE_ORDER_ID_FIELD_NUMBER: _ClassVar[int]
    order_id: str
    client_order_id: str
    symbol: str
    side: OrderSide
    type: OrderType
    state: OrderState
    time_in_force: TimeInForce
    quantity: float
    price: float
    stop_price: float
    filled_quantity: float
    average_price: float
    fee: float
    fee_asset: str
    created_at: int
    updated_at: int
    user_id: str
    reduce_only: bool
    post_only: bool
    exchange_order_id: str
    def __init__(self, order_id: _Optional[str] = ..., client_order_id: _Optional[str] = ..., symbol: _Optional[str] = ..., side: _Optional[_Union[OrderSide, str]] = ..., type: _Optional[_Union[OrderType, str]] = ..., state: _Optional[_Union[OrderState, str]] = ..., time_in_force: _Optional[_Union[TimeInForce, str]] = ..., quantity: _Optional[float] = ..., price: _Optional[float] = ..., stop_price: _Optional[float] = ..., filled_quantity: _Optional[float] = ..., average_price: _Optional[float] = ..., fee: _Optional[float] = ..., fee_asset: _Optional[str] = ..., created_at: _Optional[int] = ..., updated_at: _Optional[int] = ..., user_id: _Optional[str] = ..., reduce_only: _Optional[bool] = ..., post_only: _Optional[bool] = ..., exchange_order_id: _Optional[str] = ...) -> None: ...

class OrderUpdate(_message.Message):
    __slots__ = ("order", "update_type", "timestamp")
    ORDER_FIELD_NUMBER: _ClassVar[int]
    UPDATE_TYPE_FIELD_NUMBER: _ClassVar[int]
    TIMESTAMP_FIELD_NUMBER: _ClassVar[int]
    order: Order
    update_type: str
    timestamp: int
    def __init__(self, order: _Optional[_Union[Order, _Mapping]] = ..., update_type: _Optional[str] = ..., timestamp: _Optional[int] = ...) -> None: ...
