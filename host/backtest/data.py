"""Market data files for a backtest, read as one stream of SDK market events in time order.

Model. ``open_data`` checks every file up front (it exists, its format, a CSV's header) and returns
a ``DataSet``; iterating the data set reads the files lazily, one line at a time, and merges them
with ``heapq.merge`` on (timestamp, file index, line number), so events with equal timestamps come
in the order the files were given, then in line order: the same files always give the same stream.
Iterating again reads the files again (and starts a fresh count of bad rows).

Formats, by the file name (``.gz`` is read through gzip, then the name before it counts):

- ``.csv``/``.tsv``/``.txt``: OHLCV bars, one a row, each becoming a ``Candle``. The header is
  detected: a time column (``timestamp``, ``datetime``, ``open_time``, ``date``, ``time`` or ``ts``,
  first found wins), ``open``, ``high``, ``low``, ``close`` and optionally ``volume``,
  ``quote_volume`` and ``symbol`` (any letter case; ``o h l c v`` too). A file whose first row is
  all numbers has no header and is read by position as a Binance kline archive is laid out:
  open time, open, high, low, close, volume, close time, quote volume, ... . The delimiter is
  whichever of ``,`` ``;`` tab ``|`` the first row holds most of. A timestamp is the bar's *open*
  time, as epoch seconds, milliseconds, microseconds or nanoseconds (told apart by size: below
  1e11 s, below 1e14 ms, below 1e17 us, else ns) or ISO 8601 (no zone means UTC). The symbol comes
  from the file's ``symbol`` column; without one, from the ``symbol`` argument; without that, from
  the file name: the stem (``BTCUSDT.csv`` -> ``BTCUSDT``), or the part before the interval in a
  Binance archive name (``ETHUSDT-1m-2022-08-14.csv`` -> ``ETHUSDT``).
- anything else: JSON lines in the engine's market-data format (``sdk._codec.decode_market``: the
  ``type`` tick, trade, book or candle). A fill, position, timer or order line is a bad row: a
  backtest makes its own fills.

Bad rows (not parseable, rejected by the event's checks, or with a timestamp before the previous
row's in the same file: the merge needs each file in time order) are skipped and recorded in
``DataSet.bad`` with file, line and reason (the first ``keep_bad`` kept, all counted); with
``strict=True`` the first one raises ``DataError`` naming ``file:line``. ``start_ns``/``end_ns``
bound the stream (start inclusive, end exclusive); a file stops being read at its first row past
the end.
"""

from __future__ import annotations

import csv
import gzip
import heapq
import io
import re
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Literal

import orjson

from host.errors import EngineError
from host.feeds.fastjson import SeedFastPath

# The one place the backtest reaches into the SDK's (private) decoder.
from sdk._codec import decode_market, format_timestamp, parse_timestamp
from sdk.errors import ValidationError
from sdk.events import Candle, MarketEvent

__all__ = ["BadRow", "BadRows", "DataError", "DataSet", "open_data", "parse_time"]

Format = Literal["jsonl", "csv"]
_CSV_SUFFIXES = {".csv", ".tsv", ".txt"}
_NOT_MARKET = {"fill", "position", "timer", "order"}
# Header names by the field they give, in the order a column is looked for.
_COLUMNS: dict[str, tuple[str, ...]] = {
    "timestamp": ("timestamp", "datetime", "open_time", "date", "time", "ts"),
    "open": ("open", "o"),
    "high": ("high", "h"),
    "low": ("low", "l"),
    "close": ("close", "c"),
    "volume": ("volume", "vol", "v", "base_volume"),
    "volume_quote": ("quote_volume", "volume_quote", "quote_asset_volume"),
    "symbol": ("symbol", "ticker", "pair", "instrument"),
}
_REQUIRED = ("timestamp", "open", "high", "low", "close")
# A headerless file, read as a Binance kline archive: column index of each field.
_KLINE_LAYOUT = {"timestamp": 0, "open": 1, "high": 2, "low": 3, "close": 4, "volume": 5, "volume_quote": 7}
_BINANCE_NAME = re.compile(r"([A-Za-z0-9]+)-\d+[smhdwM]-")
_HOUR = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}")
_HOURS: dict[str, int] = {}  # "YYYY-MM-DDTHH" -> epoch ns, for _rfc3339_ns
_NUMBER = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")


class DataError(EngineError):
    """A data file (or a time bound) that cannot be used: ``where`` is the file (or option), ``line`` its line."""

    def __init__(self, where: str, reason: str, line: int = 0) -> None:
        self.where = where
        self.line = line
        self.reason = reason
        super().__init__(f"{where}:{line}: {reason}" if line else f"{where}: {reason}")

    def __reduce__(self) -> tuple[type[DataError], tuple[str, str, int]]:
        return DataError, (self.where, self.reason, self.line)  # it may come back from a sweep's worker


@dataclass(frozen=True, slots=True)
class BadRow:
    path: str
    line: int
    reason: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.reason}"


@dataclass
class BadRows:
    """The rows skipped: the first ``keep`` in full, every one counted (in all and per file)."""

    keep: int = 20
    kept: list[BadRow] = field(default_factory=list)
    total: int = 0
    by_file: Counter[str] = field(default_factory=Counter)

    def add(self, row: BadRow) -> None:
        self.total += 1
        self.by_file[row.path] += 1
        if len(self.kept) < self.keep:
            self.kept.append(row)

    def to_dict(self) -> dict[str, Any]:
        return {
            "total": self.total,
            "by_file": dict(sorted(self.by_file.items())),
            "first": [{"file": r.path, "line": r.line, "reason": r.reason} for r in self.kept],
        }


@dataclass(frozen=True)
class _Source:
    path: Path
    format: Format
    columns: dict[str, int] = field(default_factory=dict)  # CSV: field -> column index
    delimiter: str = ","
    header: bool = True
    symbol: str = ""  # CSV without a symbol column: the symbol its bars are for
    symbol_from: str = ""  # "column", "argument" or "file name"


class DataSet:
    """The files of one backtest; iterate it for their market events, merged in time order."""

    def __init__(
        self, sources: Sequence[_Source], *, strict: bool, start_ns: int | None, end_ns: int | None, keep_bad: int
    ) -> None:
        self._sources = tuple(sources)
        self.strict = strict
        self.start_ns = start_ns
        self.end_ns = end_ns
        self.bad = BadRows(keep=keep_bad)

    @property
    def paths(self) -> tuple[Path, ...]:
        return tuple(source.path for source in self._sources)

    def __iter__(self) -> Iterator[MarketEvent]:
        self.bad = BadRows(keep=self.bad.keep)
        streams = [self._read(source, index, self.bad) for index, source in enumerate(self._sources)]
        merged = streams[0] if len(streams) == 1 else heapq.merge(*streams)
        return (entry[3] for entry in merged)

    def count_lines(self) -> int:
        """Lines in all files (headers excluded): an upper bound on the events, for a progress bar.

        Counts newlines in raw blocks without decoding anything (gzip files are decompressed).
        """
        total = 0
        for source in self._sources:
            with _open_binary(source.path) as stream:
                last = b"\n"
                for block in iter(lambda: stream.read(1 << 20), b""):
                    total += block.count(b"\n")
                    last = block[-1:]
                total += last != b"\n"
            total -= source.format == "csv" and source.header
        return total

    def bar_interval_ns(self, sample: int = 2000) -> int | None:
        """The most common gap between consecutive candles of one symbol in the first ``sample`` events.

        None when they hold fewer than two candles of a symbol (tick data: sample at a set interval).
        """
        gaps: Counter[int] = Counter()
        last: dict[str, int] = {}
        streams = [self._read(source, i, BadRows(keep=0), strict=False) for i, source in enumerate(self._sources)]
        for count, (_, _, _, event) in enumerate(heapq.merge(*streams)):
            if count >= sample:
                break
            if isinstance(event, Candle):
                before = last.get(event.symbol)
                if before is not None and event.timestamp_ns > before:
                    gaps[event.timestamp_ns - before] += 1
                last[event.symbol] = event.timestamp_ns
        return min(gaps, key=lambda gap: (-gaps[gap], gap)) if gaps else None

    def span(self) -> tuple[int, int] | None:
        """(first, last) event time within the bounds, None without events; reads every file once."""
        first = last = None
        for source in self._sources:
            for ts, _, _, _ in self._read(source, 0, BadRows(keep=0), strict=False):
                first = ts if first is None else min(first, ts)
                last = ts if last is None else max(last, ts)
        return None if first is None or last is None else (first, last)

    def describe(self) -> dict[str, Any]:
        """The inputs as the report shows them: files with format and symbol source, bounds, bad rows."""
        files = []
        for source in self._sources:
            entry: dict[str, Any] = {"path": str(source.path), "format": source.format}
            if source.format == "csv":
                entry["symbol_from"] = source.symbol_from
                if source.symbol:
                    entry["symbol"] = source.symbol
            files.append(entry)
        bounds = {
            "from": None if self.start_ns is None else format_timestamp(self.start_ns),
            "to": None if self.end_ns is None else format_timestamp(self.end_ns),
        }
        return {"files": files, "bounds": bounds, "bad_rows": self.bad.to_dict()}

    def _read(
        self, source: _Source, index: int, bad: BadRows, *, strict: bool | None = None
    ) -> Iterator[tuple[int, int, int, MarketEvent]]:
        """(timestamp, file index, line, event) for each good row of one file, within the bounds."""
        strict = self.strict if strict is None else strict
        start, end = self.start_ns, self.end_ns
        where = str(source.path)
        rows = _json_rows(source) if source.format == "jsonl" else _csv_rows(source)
        previous = None
        for line, outcome in rows:
            if isinstance(outcome, str):
                _reject(bad, strict, where, line, outcome)
                continue
            ts = outcome.timestamp_ns
            if previous is not None and ts < previous:
                reason = (
                    f"timestamp {format_timestamp(ts)} is before the previous row's {format_timestamp(previous)}"
                    " (each file must be in time order)"
                )
                _reject(bad, strict, where, line, reason)
                continue
            previous = ts
            if end is not None and ts >= end:
                return
            if start is None or ts >= start:
                yield ts, index, line, outcome


def _reject(bad: BadRows, strict: bool, where: str, line: int, reason: str) -> None:
    if strict:
        raise DataError(where, reason, line)
    bad.add(BadRow(where, line, reason))


def open_data(
    paths: Iterable[str | Path],
    *,
    strict: bool = False,
    start_ns: int | None = None,
    end_ns: int | None = None,
    symbol: str | None = None,
    keep_bad: int = 20,
) -> DataSet:
    """The market data in ``paths`` (see the module docstring for formats, symbols and bad rows).

    Raises ``DataError`` for a missing or unreadable file, a CSV header without the needed columns,
    no paths, or ``start_ns >= end_ns``. ``symbol`` names the bars of CSV files without a symbol column.
    """
    files = [Path(p) for p in paths]
    if not files:
        raise DataError("--data", "no data file given")
    if start_ns is not None and end_ns is not None and start_ns >= end_ns:
        reason = f"--from {format_timestamp(start_ns)} must be before --to {format_timestamp(end_ns)}"
        raise DataError("--from/--to", reason)
    if symbol is not None and not symbol.strip():
        raise DataError("symbol", "must not be empty")
    sources = [_inspect(path, symbol) for path in files]
    return DataSet(sources, strict=strict, start_ns=start_ns, end_ns=end_ns, keep_bad=keep_bad)


def parse_time(text: str, *, option: str = "--from") -> int:
    """An ISO 8601 date or date-time (no zone means UTC; ``2024-08-09``, ``2024-08-09T00:05:00Z``) in epoch ns."""
    value = text.strip()
    if not value or value[0] not in "0123456789":
        raise DataError(option, f"expected an ISO date or date-time (2024-08-09, 2024-08-09T00:05:00Z), got {text!r}")
    try:
        return parse_timestamp(option, value)
    except ValidationError:
        reason = f"expected an ISO date or date-time (2024-08-09, 2024-08-09T00:05:00Z), got {text!r}"
        raise DataError(option, reason) from None


# ---------------------------------------------------------------- opening files


def _open_binary(path: Path) -> IO[bytes]:
    if path.suffix == ".gz":
        return gzip.open(path, "rb")  # type: ignore[return-value]  # a GzipFile is a binary IO
    return open(path, "rb")


def _open_text(path: Path) -> IO[str]:
    return io.TextIOWrapper(_open_binary(path), encoding="utf-8", errors="replace", newline="")


def _inspect(path: Path, symbol: str | None) -> _Source:
    if not path.exists():
        raise DataError(str(path), "no such file")
    if not path.is_file():
        raise DataError(str(path), "not a file")
    name = path.name[:-3] if path.suffix == ".gz" else path.name
    try:
        if Path(name).suffix.lower() not in _CSV_SUFFIXES:
            with _open_binary(path) as stream:
                stream.read(1)
            return _Source(path, "jsonl")
        return _inspect_csv(path, Path(name).stem, symbol)
    except (OSError, EOFError) as err:
        raise DataError(str(path), f"cannot read: {err}") from None


def _inspect_csv(path: Path, stem: str, symbol: str | None) -> _Source:
    with _open_text(path) as stream:
        first = next((line for line in stream if line.strip()), "")
    if not first:
        raise DataError(str(path), "empty file: expected a CSV header or OHLCV rows")
    delimiter = max(",;\t|", key=first.count)
    cells = [cell.strip().strip('"').strip() for cell in next(csv.reader([first], delimiter=delimiter))]
    header = not _NUMBER.fullmatch(cells[0])
    columns = _header_columns(path, cells) if header else _kline_columns(path, cells)
    if "symbol" in columns:
        return _Source(path, "csv", columns, delimiter, header, "", "column")
    if symbol is not None:
        return _Source(path, "csv", columns, delimiter, header, symbol.strip(), "argument")
    match = _BINANCE_NAME.match(stem)
    return _Source(path, "csv", columns, delimiter, header, match.group(1) if match else stem, "file name")


def _header_columns(path: Path, cells: list[str]) -> dict[str, int]:
    names = [re.sub(r"[\s-]+", "_", cell.lower()) for cell in cells]
    columns: dict[str, int] = {}
    for field_name, aliases in _COLUMNS.items():
        for alias in aliases:
            if alias in names:
                columns[field_name] = names.index(alias)
                break
    missing = [name for name in _REQUIRED if name not in columns]
    if missing:
        reason = (
            f"CSV header has no {', '.join(missing)} column (found: {', '.join(cells)}); expected a time column "
            "(timestamp|datetime|open_time|date|time|ts), open, high, low, close, optional volume, quote_volume, symbol"
        )
        raise DataError(str(path), reason, 1)
    return columns


def _kline_columns(path: Path, cells: list[str]) -> dict[str, int]:
    if len(cells) < 5:
        reason = f"first row has {len(cells)} columns and no header: expected open time, open, high, low, close"
        raise DataError(str(path), reason, 1)
    return {name: index for name, index in _KLINE_LAYOUT.items() if index < len(cells)}


# ---------------------------------------------------------------- reading rows


def _json_rows(source: _Source) -> Iterator[tuple[int, MarketEvent | str]]:
    """(line, event or the reason the line is bad) for each non-empty line."""
    with _open_binary(source.path) as stream:
        for line, raw in enumerate(stream, 1):
            if not raw.strip():
                continue
            event = _FAST(raw)
            if event is not None:  # msgspec's shortcut: the same event decode_market gives, or None
                yield line, event
                continue
            try:
                data = orjson.loads(raw)
            except orjson.JSONDecodeError as err:
                yield line, f"not JSON: {err}"
                continue
            if not isinstance(data, dict):
                yield line, f"expected a JSON object, got {type(data).__name__}"
                continue
            kind = data.get("type")
            stamp = data.get("timestamp")
            if kind == "candle" and type(stamp) is str:  # ticks hit the decoder's own per-second table
                fast = _rfc3339_ns(stamp)
                if fast is not None:
                    data["timestamp"] = fast
            if isinstance(kind, str) and kind.lower() in _NOT_MARKET:
                yield line, f"a {kind.lower()} is not market data (a backtest makes its own fills and timers)"
                continue
            try:
                yield line, decode_market(data)
            except (ValidationError, ValueError, TypeError, OverflowError) as err:
                yield line, str(err)


def _rfc3339_ns(text: str) -> int | None:
    """Epoch ns of ``YYYY-MM-DDTHH:MM:SS[.fraction][Z|+00:00]`` with the hour from a table; None otherwise.

    Used for candles: a one-minute candle file has a new second (and minute) on every row, which
    misses the decoder's per-second table, while an hour is shared by 60 of them. Anything else
    (another form, a minute or second past 59) is left to the decoder (``parse_timestamp``).
    """
    hour_ns = _HOURS.get(text[:13])
    if hour_ns is None:
        hour_ns = _hour_ns(text[:13])
        if hour_ns is None:
            return None
    clock, rest = text[13:19], text[19:]
    if len(clock) != 6 or clock[0] != ":" or clock[3] != ":" or not (clock[1:3] + clock[4:6]).isdigit():
        return None
    minutes, seconds = int(clock[1:3]), int(clock[4:6])
    if minutes > 59 or seconds > 59:
        return None
    if rest[-1:] == "Z":
        rest = rest[:-1]
    elif rest[-6:] == "+00:00":
        rest = rest[:-6]
    fraction = 0
    if rest:
        digits = rest[1:]
        if rest[0] != "." or not (digits.isascii() and digits.isdigit()):
            return None
        fraction = int(digits[:9].ljust(9, "0"))
    return hour_ns + (minutes * 60 + seconds) * 1_000_000_000 + fraction


_FAST = SeedFastPath(candle_time=_rfc3339_ns)  # candles read their time from the hour table, as above


def _hour_ns(head: str) -> int | None:
    if not _HOUR.fullmatch(head):
        return None
    try:
        hour_ns = parse_timestamp("timestamp", head + ":00:00Z")
    except ValidationError:
        return None
    if len(_HOURS) >= 4096:
        _HOURS.clear()
    _HOURS[head] = hour_ns
    return hour_ns


def _csv_rows(source: _Source) -> Iterator[tuple[int, MarketEvent | str]]:
    columns = source.columns
    width = max(columns.values()) + 1
    with _open_text(source.path) as stream:
        reader = csv.reader(stream, delimiter=source.delimiter)
        skip_header = source.header
        for cells in reader:
            line = reader.line_num
            if not cells or not any(cell.strip() for cell in cells):
                continue
            if skip_header:
                skip_header = False
                continue
            if len(cells) < width:
                yield line, f"expected at least {width} columns, got {len(cells)}"
                continue
            try:
                yield line, _candle(source, cells, line)
            except ValidationError as err:
                yield line, str(err)


def _candle(source: _Source, cells: list[str], line: int) -> Candle:
    columns = source.columns

    def number(name: str, *, required: bool = True) -> float | None:
        index = columns.get(name)
        text = "" if index is None else cells[index].strip()
        if not text:
            if required:
                raise ValidationError("Candle", name, "required")
            return None
        try:
            return float(text)
        except ValueError:
            raise ValidationError("Candle", name, f"expected a number, got {text!r}") from None

    symbol = cells[columns["symbol"]].strip() if "symbol" in columns else source.symbol
    return Candle(
        symbol=symbol,
        timestamp_ns=_csv_time(cells[columns["timestamp"]].strip()),
        open=number("open") or 0.0,
        high=number("high") or 0.0,
        low=number("low") or 0.0,
        close=number("close") or 0.0,
        volume=number("volume", required=False),
        volume_quote=number("volume_quote", required=False),
        sequence=line,
    )


def _csv_time(text: str) -> int:
    if not text:
        raise ValidationError("Candle", "timestamp", "required")
    value: object = text
    if _NUMBER.fullmatch(text):
        value = int(text) if text.lstrip("+-").isdigit() else float(text)
    return parse_timestamp("Candle", value)
