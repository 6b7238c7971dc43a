"""The engine's ``orderexecution.OrderExecution`` against b25's, on the wire, message by message.

``tests/compat/b25_order_execution.proto`` is written from the table of b25's definition
(``../shared/compat/b25-grpc.md``, section 1). It is compiled here with grpc_tools' protoc into a
descriptor set and loaded into a descriptor pool of its own (the package name is the same as the
engine's, so the default pool cannot hold both). Each message is compared by descriptor (every b25
field exists in the engine's message with the same number, wire type, cardinality and name; the engine's
extra fields come after b25's last number) and by bytes: a message with every field set is encoded
with the engine's generated class and decoded with b25's, and the other way, field by field.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from google.protobuf.descriptor import Descriptor, FieldDescriptor

from engine_proto import order_execution_pb2 as ours

B25_PROTO = Path(__file__).resolve().parent.parent / "compat" / "b25_order_execution.proto"
MESSAGES = [
    "OrderRequest", "OrderResponse", "BatchOrderRequest", "BatchOrderResponse", "CancelOrderRequest",
    "CancelOrderResponse", "OrderStatusRequest", "OrderStatusResponse",
]  # fmt: skip


@pytest.fixture(scope="module")
def b25(tmp_path_factory: pytest.TempPathFactory) -> descriptor_pool.DescriptorPool:
    out = tmp_path_factory.mktemp("b25") / "b25.pb"
    command = [sys.executable, "-m", "grpc_tools.protoc", f"--proto_path={B25_PROTO.parent}",
               f"--descriptor_set_out={out}", B25_PROTO.name]  # fmt: skip
    subprocess.run(command, check=True, capture_output=True)
    files = descriptor_pb2.FileDescriptorSet.FromString(out.read_bytes())
    pool = descriptor_pool.DescriptorPool()
    for file in files.file:
        pool.Add(file)
    return pool


def b25_class(pool: descriptor_pool.DescriptorPool, name: str) -> Any:
    return message_factory.GetMessageClass(pool.FindMessageTypeByName(f"orderexecution.{name}"))


def sample(descriptor: Descriptor, message: Any, seed: int = 1) -> None:
    """Set every field of ``message`` to a value derived from its number (nested messages too)."""
    for field in descriptor.fields:
        number = field.number + seed * 100
        if field.message_type is not None and field.message_type.GetOptions().map_entry:
            getattr(message, field.name).update({f"k{number}": f"v{number}", "b": "2"})
        elif field.message_type is not None:
            for index in range(2):
                sample(field.message_type, getattr(message, field.name).add(), seed + index + 1)
        else:
            setattr(message, field.name, _value(field, number))


def _value(field: FieldDescriptor, number: int) -> Any:
    if field.type == FieldDescriptor.TYPE_STRING:
        return f"{field.name}-{number}"
    if field.type == FieldDescriptor.TYPE_DOUBLE:
        return number + 0.25
    if field.type == FieldDescriptor.TYPE_BOOL:
        return True
    return number * 1_000_003  # the integers: large enough to need several varint bytes


@pytest.mark.parametrize("name", MESSAGES)
def test_every_b25_field_has_its_number_type_and_name_in_the_engines_message(
    b25: descriptor_pool.DescriptorPool, name: str
) -> None:
    theirs = b25.FindMessageTypeByName(f"orderexecution.{name}")
    mine = ours.DESCRIPTOR.message_types_by_name[name]
    for field in theirs.fields:
        match = mine.fields_by_number.get(field.number)
        assert match is not None, f"{name}: field {field.number} ({field.name}) missing"
        assert (match.name, match.type, match.is_repeated) == (field.name, field.type, field.is_repeated), (
            f"{name}.{field.number}: ours {match.name} type {match.type} repeated {match.is_repeated}, "
            f"b25 {field.name} type {field.type} repeated {field.is_repeated}"
        )
        if field.message_type is not None:
            assert match.message_type.name == field.message_type.name
    last = max(f.number for f in theirs.fields)
    extra = [f for f in mine.fields if f.number not in theirs.fields_by_number]
    assert all(f.number > last for f in extra), f"{name}: fields of our own must come after {last}"


def test_the_service_has_b25s_methods_with_b25s_message_types(b25: descriptor_pool.DescriptorPool) -> None:
    theirs = b25.FindServiceByName("orderexecution.OrderExecution")
    mine = ours.DESCRIPTOR.services_by_name["OrderExecution"]
    assert mine.full_name == theirs.full_name
    for method in theirs.methods:
        match = mine.methods_by_name[method.name]
        assert (match.input_type.full_name, match.output_type.full_name) == (
            method.input_type.full_name, method.output_type.full_name,
        )  # fmt: skip


@pytest.mark.parametrize("name", MESSAGES)
def test_encoded_by_the_engine_decoded_by_b25_and_back_field_by_field(
    b25: descriptor_pool.DescriptorPool, name: str
) -> None:
    theirs_class = b25_class(b25, name)
    mine = getattr(ours, name)()
    sample(mine.DESCRIPTOR, mine)
    decoded = theirs_class.FromString(mine.SerializeToString())
    _same_fields(decoded, mine, name)
    back = getattr(ours, name).FromString(decoded.SerializeToString())  # b25 keeps our extension fields
    assert back == mine
    original = theirs_class()
    sample(original.DESCRIPTOR, original, seed=7)
    read = getattr(ours, name).FromString(original.SerializeToString())
    _same_fields(original, read, name)


def _same_fields(theirs: Any, mine: Any, name: str) -> None:
    """Every field b25 defines reads the same in both (nested messages compared the same way)."""
    for field in theirs.DESCRIPTOR.fields:
        a, b = getattr(theirs, field.name), getattr(mine, field.name)
        if field.message_type is not None and field.message_type.GetOptions().map_entry:
            assert dict(a) == dict(b), f"{name}.{field.name}"
        elif field.message_type is not None:
            assert len(a) == len(b), f"{name}.{field.name}"
            for x, y in zip(a, b, strict=True):
                _same_fields(x, y, f"{name}.{field.name}")
        else:
            assert a == b, f"{name}.{field.name}: b25 reads {a!r}, ours {b!r}"
