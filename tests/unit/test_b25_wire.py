"""The engine's order-execution protocols against b25's, on the wire, message by message.

Two definitions, each written from its table in ``../shared/compat/b25-grpc.md``:
``tests/compat/b25_order_execution.proto`` (section 1, ``orderexecution.OrderExecution``, the Go
strategy engine's client definition) and ``tests/compat/b25_order_service.proto`` (section 2,
``order.OrderService``, what b25 runs at :50051). Each is compiled here with grpc_tools' protoc
into a descriptor set and loaded into a descriptor pool of its own (the package names are the
engine's, so the default pool cannot hold both). Each message is compared by descriptor (every b25
field exists in the engine's message with the same number, wire type, cardinality and name; the
engine's extra fields, which only ``orderexecution`` may have, come after b25's last number), each
enum by its values, each service by its methods, and each message by bytes: a message with every
field set is encoded with the engine's generated class and decoded with b25's, and the other way,
field by field.
"""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from google.protobuf.descriptor import Descriptor, FieldDescriptor

from engine_proto import order_execution_pb2, order_service_pb2

COMPAT = Path(__file__).resolve().parent.parent / "compat"


@dataclass(frozen=True)
class Definition:
    """One b25 service definition and the engine's generated module that must match it."""

    proto: str  # file under tests/compat
    package: str
    ours: Any
    service: str
    messages: tuple[str, ...]
    enums: tuple[str, ...] = ()
    extensions: bool = False  # whether the engine may add fields after b25's


ORDER_EXECUTION = Definition(
    "b25_order_execution.proto", "orderexecution", order_execution_pb2, "OrderExecution",
    ("OrderRequest", "OrderResponse", "BatchOrderRequest", "BatchOrderResponse", "CancelOrderRequest",
     "CancelOrderResponse", "OrderStatusRequest", "OrderStatusResponse"),
    extensions=True,
)  # fmt: skip
ORDER_SERVICE = Definition(
    "b25_order_service.proto", "order", order_service_pb2, "OrderService",
    ("CreateOrderRequest", "CreateOrderResponse", "CancelOrderRequest", "CancelOrderResponse", "GetOrderRequest",
     "GetOrderResponse", "GetOrdersRequest", "GetOrdersResponse", "StreamOrderUpdatesRequest", "Order", "OrderUpdate"),
    enums=("OrderSide", "OrderType", "OrderState", "TimeInForce"),
)  # fmt: skip
DEFINITIONS = (ORDER_EXECUTION, ORDER_SERVICE)
MESSAGES = [pytest.param(d, name, id=f"{d.package}.{name}") for d in DEFINITIONS for name in d.messages]
ENUMS = [pytest.param(d, name, id=f"{d.package}.{name}") for d in DEFINITIONS for name in d.enums]
SERVICES = [pytest.param(d, id=d.package) for d in DEFINITIONS]


@pytest.fixture(scope="module")
def pools(tmp_path_factory: pytest.TempPathFactory) -> dict[str, descriptor_pool.DescriptorPool]:
    """Each b25 definition compiled into a descriptor pool of its own, by package."""
    found = {}
    for definition in DEFINITIONS:
        out = tmp_path_factory.mktemp("b25") / f"{definition.package}.pb"
        command = [sys.executable, "-m", "grpc_tools.protoc", f"--proto_path={COMPAT}",
                   f"--descriptor_set_out={out}", definition.proto]  # fmt: skip
        subprocess.run(command, check=True, capture_output=True)
        pool = descriptor_pool.DescriptorPool()
        for file in descriptor_pb2.FileDescriptorSet.FromString(out.read_bytes()).file:
            pool.Add(file)
        found[definition.package] = pool
    return found


def b25_message(pools: dict[str, descriptor_pool.DescriptorPool], definition: Definition, name: str) -> Descriptor:
    return pools[definition.package].FindMessageTypeByName(f"{definition.package}.{name}")


def sample(descriptor: Descriptor, message: Any, seed: int = 1) -> None:
    """Set every field of ``message`` to a value derived from its number (nested messages too)."""
    for field in descriptor.fields:
        number = field.number + seed * 100
        target = getattr(message, field.name)
        if field.message_type is not None and field.message_type.GetOptions().map_entry:
            target.update({f"k{number}": f"v{number}", "b": "2"})
        elif field.message_type is not None and field.is_repeated:
            for index in range(2):
                sample(field.message_type, target.add(), seed + index + 1)
        elif field.message_type is not None:
            sample(field.message_type, target, seed + 1)
        elif field.is_repeated:
            target.extend([_value(field, number), _value(field, number + 1)])
        else:
            setattr(message, field.name, _value(field, number))


def _value(field: FieldDescriptor, number: int) -> Any:
    if field.type == FieldDescriptor.TYPE_STRING:
        return f"{field.name}-{number}"
    if field.type == FieldDescriptor.TYPE_DOUBLE:
        return number + 0.25
    if field.type == FieldDescriptor.TYPE_BOOL:
        return True
    if field.type == FieldDescriptor.TYPE_ENUM:  # a named value other than 0, chosen by the number
        values = field.enum_type.values
        return values[1 + number % (len(values) - 1)].number
    return number * 1_000_003  # the integers: large enough to need several varint bytes


@pytest.mark.parametrize(("definition", "name"), MESSAGES)
def test_every_b25_field_has_its_number_type_and_name_in_the_engines_message(
    pools: dict[str, descriptor_pool.DescriptorPool], definition: Definition, name: str
) -> None:
    theirs = b25_message(pools, definition, name)
    mine = definition.ours.DESCRIPTOR.message_types_by_name[name]
    for field in theirs.fields:
        match = mine.fields_by_number.get(field.number)
        assert match is not None, f"{name}: field {field.number} ({field.name}) missing"
        assert (match.name, match.type, match.is_repeated) == (field.name, field.type, field.is_repeated), (
            f"{name}.{field.number}: ours {match.name} type {match.type} repeated {match.is_repeated}, "
            f"b25 {field.name} type {field.type} repeated {field.is_repeated}"
        )
        if field.message_type is not None:
            assert match.message_type.name == field.message_type.name
        if field.enum_type is not None:
            assert match.enum_type.full_name == field.enum_type.full_name
    last = max(f.number for f in theirs.fields)
    extra = [f for f in mine.fields if f.number not in theirs.fields_by_number]
    if definition.extensions:
        assert all(f.number > last for f in extra), f"{name}: fields of our own must come after {last}"
    else:
        assert extra == [], f"{name}: fields b25 does not define: {[f.name for f in extra]}"


@pytest.mark.parametrize(("definition", "name"), ENUMS)
def test_every_enum_has_b25s_names_and_numbers(
    pools: dict[str, descriptor_pool.DescriptorPool], definition: Definition, name: str
) -> None:
    theirs = pools[definition.package].FindEnumTypeByName(f"{definition.package}.{name}")
    mine = definition.ours.DESCRIPTOR.enum_types_by_name[name]
    assert [(v.name, v.number) for v in mine.values] == [(v.name, v.number) for v in theirs.values]


@pytest.mark.parametrize("definition", SERVICES)
def test_the_service_has_b25s_methods_with_b25s_message_types(
    pools: dict[str, descriptor_pool.DescriptorPool], definition: Definition
) -> None:
    theirs = pools[definition.package].FindServiceByName(f"{definition.package}.{definition.service}")
    mine = definition.ours.DESCRIPTOR.services_by_name[definition.service]
    assert mine.full_name == theirs.full_name
    assert [m.name for m in mine.methods] == [m.name for m in theirs.methods]
    for method in theirs.methods:
        match = mine.methods_by_name[method.name]
        assert (match.input_type.full_name, match.output_type.full_name) == (
            method.input_type.full_name, method.output_type.full_name,
        )  # fmt: skip
        assert (match.client_streaming, match.server_streaming) == (method.client_streaming, method.server_streaming)


@pytest.mark.parametrize(("definition", "name"), MESSAGES)
def test_encoded_by_the_engine_decoded_by_b25_and_back_field_by_field(
    pools: dict[str, descriptor_pool.DescriptorPool], definition: Definition, name: str
) -> None:
    theirs_class = message_factory.GetMessageClass(b25_message(pools, definition, name))
    ours_class = getattr(definition.ours, name)
    mine = ours_class()
    sample(mine.DESCRIPTOR, mine)
    decoded = theirs_class.FromString(mine.SerializeToString())
    _same_fields(decoded, mine, name)
    back = ours_class.FromString(decoded.SerializeToString())  # b25 keeps our extension fields
    assert back == mine
    original = theirs_class()
    sample(original.DESCRIPTOR, original, seed=7)
    read = ours_class.FromString(original.SerializeToString())
    _same_fields(original, read, name)


def _same_fields(theirs: Any, mine: Any, name: str) -> None:
    """Every field b25 defines reads the same in both (nested messages compared the same way)."""
    for field in theirs.DESCRIPTOR.fields:
        a, b = getattr(theirs, field.name), getattr(mine, field.name)
        where = f"{name}.{field.name}"
        if field.message_type is not None and field.message_type.GetOptions().map_entry:
            assert dict(a) == dict(b), where
        elif field.message_type is not None and field.is_repeated:
            assert len(a) == len(b), where
            for x, y in zip(a, b, strict=True):
                _same_fields(x, y, where)
        elif field.message_type is not None:
            assert theirs.HasField(field.name) and mine.HasField(field.name), where
            _same_fields(a, b, where)
        elif field.is_repeated:
            assert list(a) == list(b), where
        else:
            assert a == b, f"{where}: b25 reads {a!r}, ours {b!r}"
