"""msgspec's shortcut for the seed's market data gives what orjson + ``decode_market`` gives, message for message.

One corpus goes through both: the codec's own test messages, the seed's shapes from compat/messages.md,
Go's zero-value messages, and a few thousand generated from them by changing one or two fields to
what peers send (numbers as strings, enums in any case, zero values, nulls) or to something wrong
(bad types, crossed books, unknown fields, huge integers, broken JSON). For every message the
outcome through the shortcut (its event, else the existing path) must equal the existing path's:
the same event (compared by ``repr``, so 0.0 and -0.0 or an int and a float differ) or the same
error type and text.
"""

from __future__ import annotations

import json
import random
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from host.backtest import data as backtest_data
from host.feeds.fastjson import SeedFastPath, decode_seed
from host.feeds.formats import SEED
from sdk._codec import decode_market
from sdk.events import Book, Candle, Tick, Trade
from tests import helpers
from tests.unit.sdk.test_codec import TestDecodeMarket

COMPAT = Path("/work/shared/compat/messages.md")
T = "2024-01-02T03:04:05.123456789Z"
TEMPLATES: list[dict[str, Any]] = [
    {"symbol": "BTCUSDT", "timestamp": T, "sequence": 7, "type": "tick", "bid_price": 61837.63, "bid_size": 3.5,
     "ask_price": 61837.64, "ask_size": 1.2},
    {"symbol": "ETHUSDT", "timestamp": "2024-01-02T03:04:05Z", "type": "TICK", "sequence": "7", "bid_price": "100.5",
     "ask_price": "101", "bid_size": "1.5", "ask_size": "2", "last_price": "100.75"},
    {"symbol": "BTCUSDT", "timestamp": T, "type": "trade", "last_price": 100.5, "volume": 0.2, "volume_quote": 20.1,
     "side": "BUY", "sequence": 9},
    {"symbol": "BTCUSDT", "timestamp": T, "type": "book", "bids": [[100.5, 1.0], ["100", "2"]], "asks": [[101, 3]],
     "last_price": 100.7, "sequence": 3},
    {"symbol": "BTCUSDT", "timestamp": "2024-01-02T03:05:00Z", "type": "candle", "open": 100, "high": 110, "low": 95,
     "close": 105.0, "volume": "3", "volume_quote": 315.0},
    helpers.go_market("tick", timestamp=T, bid_price=100.0, ask_price=101.0),
    helpers.go_market("trade", timestamp=T, last_price="100.5", volume="0.2", volume_quote="20.1", sequence=9),
    helpers.go_market("book", timestamp=T, bids=[["100.5", "1"]], asks=[["101", "3"]], last_price=100.7),
    helpers.go_market("candle", timestamp=T, open="100", high="110", low="95", close="105", volume="3"),
]  # fmt: skip
NUMBERS: list[Any] = [
    101.25, 100, 0, 0.0, -0.0, -1, 1e-9, "100.5", "0", "", " ", " 100.5 ", "abc", "nan", "inf", "-inf", "1e400",
    "1_000", "+5", "0x10", True, False, None, [], {}, 10**20, 10**30, 2**64, 1e308, 61837.640000000001,
]  # fmt: skip
SEQUENCES: list[Any] = [7, 0, -7, "7", "-7", " 7", "+7", "x", "", 7.0, 7.5, True, None, 2**63 - 1, 2**63, 2**64 - 1,
                        2**64, -(2**63), -(2**63) - 1, 10**30]  # fmt: skip
TYPES: list[Any] = ["tick", "TICK", "Tick", "trade", "Trade", "book", "BOOK", "candle", "", None, "quote", 3, 0,
                    False, "fill", "timer"]  # fmt: skip
TIMESTAMPS: list[Any] = [
    T, "2024-01-02T03:04:05Z", "2024-01-02T03:04:05z", "2024-01-02T03:04:05", "2024-01-02T05:04:05+02:00",
    "2024-01-02T03:04:05.5+00:00", "2024-01-02T03:04:05.1234567891Z", "2031-07-09T11:12:13.000000001Z",
    "2024-01-02T03:04:05.12345678xZ", "2024-01-02T03:04:65Z", "2024-13-01T00:00:00Z", "", "yesterday", None,
    1_704_164_645, 1_704_164_645_123, 1_704_164_645.5, True,
]  # fmt: skip
SIDES: list[Any] = ["buy", "SELL", "Buy", "", None, "hold", 1]
SYMBOLS: list[Any] = ["BTCUSDT", "", None, 5, "ÉTH"]
LEVELS: list[Any] = [None, [], [[1.5, 2]], [["1.5", "2"]], [[1, 2], [0, 1]], [[1, -2]], [["x", 1]], [[1, 2, 3]],
                     [[1]], "x", [5], [[True, 1]], [["nan", 1]], {"1": 2}]  # fmt: skip
FIELDS = {
    "sequence": SEQUENCES, "type": TYPES, "timestamp": TIMESTAMPS, "side": SIDES, "symbol": SYMBOLS,
    "bids": LEVELS, "asks": LEVELS,
    **{name: NUMBERS for name in ("last_price", "bid_price", "ask_price", "bid_size", "ask_size", "volume",
                                  "volume_quote", "open", "high", "low", "close")},
}  # fmt: skip
RAW = [
    b"",
    b"not json",
    b"[]",
    b'"tick"',
    b"5",
    b"null",
    b"{",
    b'{"symbol": "BTCUSDT"} trailing',
    b'\xef\xbb\xbf{"symbol":"BTCUSDT","timestamp":"2024-01-02T03:04:05Z","bid_price":1,"ask_price":2}',
    b'{"symbol":"BTCUSDT","timestamp":"2024-01-02T03:04:05Z","bid_price":3,"ask_price":2,"bid_price":1}',
    b'{"symbol":"BTCUSDT","timestamp":"2024-01-02T03:04:05Z","bid_price":1,"ask_price":2,"bid_price":3}',
    b'{"symbol":"BTCUSDT","timestamp":"2024-01-02T03:04:05Z","bid_price":NaN,"ask_price":2}',
    b'{"symbol":"BTC\\u0055SDT","timestamp":"2024-01-02T03:04:05Z","bid_price":1e2,"ask_price":2E2}',
    b'{"symbol":"BTCUSDT","timestamp":"2024-01-02T03:04:05Z","bid_price":1,"ask_price":2,"sequence":-0}',
    b'{"symbol":"\xff","timestamp":"2024-01-02T03:04:05Z","bid_price":1,"ask_price":2}',
]


def existing(payload: bytes) -> object:
    """The path before the shortcut: orjson, then ``decode_market`` for an object (as the feed does)."""
    try:
        data = orjson.loads(payload)
        if type(data) is not dict:
            return ("not an object", type(data).__name__)
        return repr(decode_market(data))
    except Exception as err:
        return (type(err).__name__, str(err))


def shortcut(payload: bytes, fast: Callable[[bytes], object] = decode_seed) -> tuple[object, bool]:
    """(the outcome with the shortcut first, whether the shortcut decided)."""
    event = fast(payload)
    return (existing(payload), False) if event is None else (repr(event), True)


def _compat_messages() -> Iterator[dict[str, Any]]:
    if not COMPAT.exists():
        return
    for block in re.findall(r"```json\n(.*?)```", COMPAT.read_text(), re.S):
        for text in re.split(r"\n(?=\{)", block.strip()):
            yield json.loads(text)


def _codec_cases() -> list[dict[str, Any]]:
    mark = next(m for m in TestDecodeMarket.test_bad_message_is_rejected.pytestmark if m.name == "parametrize")
    return [data for data, _ in mark.args[1]]


def _generated(count: int, seed: int = 13) -> Iterator[dict[str, Any]]:
    rng = random.Random(seed)
    names = sorted(FIELDS)
    for _ in range(count):
        message = dict(rng.choice(TEMPLATES))
        for name in rng.sample(names, rng.choice((1, 1, 2))):
            roll = rng.random()
            if roll < 0.08:
                message.pop(name, None)
            elif roll < 0.12:
                message["quantiy"] = 1
            else:
                message[name] = rng.choice(FIELDS[name])
        yield message


def _encode(message: dict[str, Any]) -> bytes:
    return json.dumps(message, ensure_ascii=False).encode()  # NaN/Infinity literals included: both must refuse them


def corpus() -> list[bytes]:
    messages = [*TEMPLATES, *_compat_messages(), *_codec_cases(), *_generated(6000)]
    return [*(_encode(m) for m in messages), *RAW]


CORPUS = corpus()


class TestSameOutcome:
    def test_every_message_decodes_as_the_existing_path_decodes_it(self) -> None:
        """For the whole corpus, the shortcut's outcome equals orjson + decode_market's: same event or same error."""
        decided = 0
        for payload in CORPUS:
            got, fast = shortcut(payload)
            assert got == existing(payload), payload
            decided += fast
        # Not vacuous: the shortcut decides a good share, and every kind of market event.
        assert decided > len(CORPUS) // 5, (decided, len(CORPUS))
        kinds = {type(decode_seed(p)) for p in CORPUS} - {type(None)}
        assert kinds == {Tick, Trade, Book, Candle}

    def test_seed_ticks_and_peer_ticks_take_the_shortcut(self) -> None:
        """The seed's tick, a peer's tick with numbers as strings and Go's zero-value tick are decided by msgspec."""
        for message in (TEMPLATES[0], TEMPLATES[1], TEMPLATES[5]):
            assert isinstance(decode_seed(_encode(message)), Tick), message

    @pytest.mark.parametrize(
        "payload",
        [
            b'{"symbol":"BTCUSDT","timestamp":"2024-01-02T03:04:05Z","bid_price":101,"ask_price":100}',
            b'{"symbol":"BTCUSDT","timestamp":"2024-01-02T03:04:05Z","bid_price":1,"ask_price":2,"quantiy":1}',
            b'{"symbol":"BTCUSDT","timestamp":1704164645,"bid_price":1,"ask_price":2}',
            b'{"symbol":"BTCUSDT","timestamp":"2024-01-02T03:04:05Z","bid_price":1,"ask_price":2,"sequence":1e30}',
            b"[1, 2]",
        ],
    )
    def test_what_the_shortcut_leaves_to_the_existing_path(self, payload: bytes) -> None:
        """A crossed tick, an unknown field, an epoch-number time, a huge sequence, a non-object: None (not sure)."""
        assert decode_seed(payload) is None

    def test_the_feed_format_uses_it(self) -> None:
        """The seed's wire format carries the shortcut; b25's formats have none (they are decoded as before)."""
        assert SEED.fast is decode_seed


class TestBacktestReader:
    def test_json_rows_read_as_before(self, tmp_path: Path) -> None:
        """The backtest reader's rows (event or reason) are what orjson + its candle time table + decode_market gave."""
        path = tmp_path / "corpus.jsonl"
        path.write_bytes(b"\n".join(p for p in CORPUS if b"\n" not in p and p.strip()))
        source = backtest_data._Source(path=path, format="jsonl")  # type: ignore[call-arg]
        rows = list(backtest_data._json_rows(source))
        lines = path.read_bytes().splitlines(keepends=True)
        assert len(rows) == len(lines)
        for (line, outcome), raw in zip(rows, lines, strict=True):
            assert (repr(outcome) if not isinstance(outcome, str) else outcome) == _reader_before(raw), (line, raw)

    def test_candles_take_the_hour_table(self) -> None:
        """A candle's time through the reader's shortcut comes from its hour table and equals parse_timestamp's."""
        fast = SeedFastPath(candle_time=backtest_data._rfc3339_ns)
        payload = _encode(TEMPLATES[4])
        got, decided = shortcut(payload, fast)
        assert decided and got == existing(payload)


def _reader_before(raw: bytes) -> str:
    """The reader's outcome for one line as ``_json_rows`` computed it before the shortcut (kept here as the
    reference)."""
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError as err:
        return f"not JSON: {err}"
    if not isinstance(data, dict):
        return f"expected a JSON object, got {type(data).__name__}"
    kind, stamp = data.get("type"), data.get("timestamp")
    if kind == "candle" and type(stamp) is str:
        hour = backtest_data._rfc3339_ns(stamp)
        if hour is not None:
            data["timestamp"] = hour
    if isinstance(kind, str) and kind.lower() in backtest_data._NOT_MARKET:
        return f"a {kind.lower()} is not market data (a backtest makes its own fills and timers)"
    try:
        return repr(decode_market(data))
    except (ValueError, TypeError, OverflowError) as err:
        return str(err)
