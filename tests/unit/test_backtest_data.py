"""The backtest's market data readers: JSON lines and CSV OHLCV, merged in time order, bad rows, bounds."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from host.backtest.data import DataError, open_data, parse_time
from sdk._codec import encode_market, format_timestamp, parse_timestamp
from sdk.events import Candle, Tick, Trade

T0 = 1_723_161_254_000_000_000  # 2024-08-08T23:54:14Z
S = 1_000_000_000
MINUTE = 60 * S


def tick(ts: int, symbol: str = "BTCUSDT", bid: float = 100.0, sequence: int = 0) -> Tick:
    return Tick(symbol=symbol, timestamp_ns=ts, bid_price=bid, bid_size=1.0, ask_price=bid + 1, ask_size=1.0,
                sequence=sequence)  # fmt: skip


def write_jsonl(path: Path, lines: list[object]) -> Path:
    """Events are encoded as the engine's market data; strings are written as they are."""
    text = [line if isinstance(line, str) else json.dumps(encode_market(line)) for line in lines]  # type: ignore[arg-type]
    path.write_text("\n".join(text) + "\n")
    return path


def keys(events: object) -> list[tuple[str, int, int]]:
    return [(e.symbol, e.timestamp_ns, e.sequence) for e in events]  # type: ignore[attr-defined]


class TestJsonLines:
    def test_reads_every_market_kind_in_file_order(self, tmp_path: Path) -> None:
        """Ticks, trades and candles come back as the SDK events they were written from."""
        events = [
            tick(T0, sequence=1),
            Trade(symbol="BTCUSDT", timestamp_ns=T0 + 1, last_price=100.5, volume=0.1, sequence=2),
            Candle(symbol="BTCUSDT", timestamp_ns=T0 + 2, open=1.0, high=2.0, low=0.5, close=1.5, sequence=3),
        ]
        data = open_data([write_jsonl(tmp_path / "a.jsonl", events)])  # type: ignore[arg-type]
        assert list(data) == events
        assert data.bad.total == 0

    def test_files_merge_by_time_ties_by_file_then_line(self, tmp_path: Path) -> None:
        """Equal timestamps come in the order the files were given, then in line order."""
        a = write_jsonl(tmp_path / "a.jsonl", [tick(T0, "A", sequence=1), tick(T0 + 2, "A", sequence=2),
                                               tick(T0 + 2, "A", sequence=3)])  # fmt: skip
        b = write_jsonl(tmp_path / "b.jsonl", [tick(T0, "B", sequence=1), tick(T0 + 1, "B", sequence=2),
                                               tick(T0 + 2, "B", sequence=3)])  # fmt: skip
        merged = keys(open_data([b, a]))
        assert merged == [("B", T0, 1), ("A", T0, 1), ("B", T0 + 1, 2), ("B", T0 + 2, 3), ("A", T0 + 2, 2),
                          ("A", T0 + 2, 3)]  # fmt: skip

    def test_iterating_twice_gives_the_same_stream(self, tmp_path: Path) -> None:
        """A data set reads its files again on each iteration, and bad rows are counted afresh."""
        data = open_data([write_jsonl(tmp_path / "a.jsonl", [tick(T0), "not json", tick(T0 + 1)])])
        assert list(data) == list(data)
        assert data.bad.total == 1

    @pytest.mark.parametrize(
        ("line", "reason"),
        [
            ("{not json", "not JSON"),
            ("[1, 2]", "expected a JSON object, got list"),
            ('{"symbol": "BTCUSDT", "timestamp": "2024-08-08T23:54:15Z", "bid_price": 1, "ask_price": 2, "quantiy": 1}',
             "market_data.quantiy: unknown field"),
            ('{"symbol": "BTCUSDT", "timestamp": "2024-08-08T23:54:15Z", "bid_price": 3, "ask_price": 2}',
             "crossed market"),
            ('{"type": "fill", "fill_id": "f", "symbol": "BTCUSDT", "side": "buy", "price": 1, "quantity": 1, '
             '"timestamp": "2024-08-08T23:54:15Z"}', "a fill is not market data"),
            ('{"symbol": "BTCUSDT", "timestamp": "yesterday", "bid_price": 1, "ask_price": 2}',
             "expected RFC 3339 time"),
        ],
    )  # fmt: skip
    def test_bad_row_is_skipped_and_named(self, tmp_path: Path, line: str, reason: str) -> None:
        """A bad line is skipped and reported with its file, line number and the reason."""
        path = write_jsonl(tmp_path / "a.jsonl", [tick(T0), line, tick(T0 + 2 * S)])
        data = open_data([path])
        assert len(list(data)) == 2
        assert data.bad.total == 1
        (row,) = data.bad.kept
        assert (row.path, row.line) == (str(path), 2)
        assert reason in row.reason

    def test_row_going_back_in_time_is_bad(self, tmp_path: Path) -> None:
        """A row stamped before the previous row of its file is skipped: the merge needs each file in order."""
        path = write_jsonl(tmp_path / "a.jsonl", [tick(T0 + S), tick(T0), tick(T0 + 2 * S)])
        data = open_data([path])
        assert [e.timestamp_ns for e in data] == [T0 + S, T0 + 2 * S]
        assert "is before the previous row's" in data.bad.kept[0].reason
        assert data.bad.kept[0].line == 2

    def test_strict_raises_naming_file_and_line(self, tmp_path: Path) -> None:
        """With strict=True the first bad row raises DataError naming file:line."""
        path = write_jsonl(tmp_path / "a.jsonl", [tick(T0), tick(T0 + 1), "{oops"])
        with pytest.raises(DataError, match=rf"^{path}:3: not JSON"):
            list(open_data([path], strict=True))

    def test_bad_rows_keep_the_first_n_and_count_all(self, tmp_path: Path) -> None:
        """Only the first keep_bad bad rows are kept in full; every one is counted, per file too."""
        path = write_jsonl(tmp_path / "a.jsonl", [tick(T0)] + ["{bad"] * 30)
        data = open_data([path], keep_bad=5)
        list(data)
        assert data.bad.total == 30
        assert [row.line for row in data.bad.kept] == [2, 3, 4, 5, 6]
        assert data.bad.to_dict()["by_file"] == {str(path): 30}

    def test_blank_lines_are_not_rows(self, tmp_path: Path) -> None:
        """Empty lines are skipped silently; line numbers still count them."""
        path = tmp_path / "a.jsonl"
        path.write_text(json.dumps(encode_market(tick(T0))) + "\n\n\n{bad\n")
        data = open_data([path])
        assert len(list(data)) == 1
        assert data.bad.kept[0].line == 4

    def test_gzip_file_is_read_through(self, tmp_path: Path) -> None:
        """A .jsonl.gz file is decompressed on the fly; count_lines counts its lines too."""
        path = tmp_path / "a.jsonl.gz"
        with gzip.open(path, "wt") as out:
            out.write("\n".join(json.dumps(encode_market(tick(T0 + i))) for i in range(5)) + "\n")
        data = open_data([path])
        assert len(list(data)) == 5
        assert data.count_lines() == 5


class TestBounds:
    def test_start_inclusive_end_exclusive(self, tmp_path: Path) -> None:
        """--from keeps an event exactly at it; --to drops an event exactly at it."""
        path = write_jsonl(tmp_path / "a.jsonl", [tick(T0 + i * S) for i in range(6)])
        data = open_data([path], start_ns=T0 + S, end_ns=T0 + 4 * S)
        assert [(e.timestamp_ns - T0) // S for e in data] == [1, 2, 3]

    def test_start_not_before_end(self, tmp_path: Path) -> None:
        """--from at or after --to is refused, naming both."""
        path = write_jsonl(tmp_path / "a.jsonl", [tick(T0)])
        with pytest.raises(DataError, match=r"--from/--to: --from .* must be before --to"):
            open_data([path], start_ns=T0, end_ns=T0)

    @pytest.mark.parametrize(
        ("text", "expected"),
        [
            ("2024-08-09", 1_723_161_600 * S),
            ("2024-08-09T00:05", 1_723_161_900 * S),
            ("2024-08-09T00:05:00Z", 1_723_161_900 * S),
            ("2024-08-09 00:05:00.5", 1_723_161_900 * S + S // 2),
            ("2024-08-09T02:05:00+02:00", 1_723_161_900 * S),
        ],
    )
    def test_parse_time_accepts_iso_dates_and_datetimes(self, text: str, expected: int) -> None:
        """Dates, date-times with or without zone (no zone is UTC) and fractions are read."""
        assert parse_time(text) == expected

    @pytest.mark.parametrize("text", ["", "tomorrow", "2024-13-01", "-5"])
    def test_parse_time_rejects_naming_the_option(self, text: str) -> None:
        """A bound that is no ISO date or date-time is refused, naming the option and the value."""
        with pytest.raises(DataError, match=r"^--to: expected an ISO date or date-time"):
            parse_time(text, option="--to")


class TestOpen:
    def test_missing_file(self, tmp_path: Path) -> None:
        """A file that does not exist is named."""
        with pytest.raises(DataError, match=rf"^{tmp_path / 'nope.jsonl'}: no such file$"):
            open_data([tmp_path / "nope.jsonl"])

    def test_folder_is_not_a_file(self, tmp_path: Path) -> None:
        """A folder given as data is refused."""
        with pytest.raises(DataError, match="not a file"):
            open_data([tmp_path])

    def test_no_paths(self) -> None:
        """An empty list of files is refused."""
        with pytest.raises(DataError, match=r"^--data: no data file given$"):
            open_data([])

    def test_count_lines_is_an_upper_bound_without_decoding(self, tmp_path: Path) -> None:
        """count_lines counts lines (a last line without newline too), CSV headers excluded."""
        a = tmp_path / "a.jsonl"
        a.write_text(json.dumps(encode_market(tick(T0))) + "\n{bad\n" + json.dumps(encode_market(tick(T0 + 1))))
        b = tmp_path / "b.csv"
        b.write_text("timestamp,open,high,low,close\n1700000000,1,1,1,1\n1700000060,1,1,1,1\n")
        assert open_data([a, b]).count_lines() == 5

    def test_describe_names_files_formats_and_symbol_sources(self, tmp_path: Path) -> None:
        """describe() lists each file with its format and, for CSV, where its symbol came from."""
        a = write_jsonl(tmp_path / "a.jsonl", [tick(T0)])
        b = tmp_path / "ETHUSDT.csv"
        b.write_text("timestamp,open,high,low,close\n1700000000,1,1,1,1\n")
        described = open_data([a, b], start_ns=T0).describe()
        assert described["files"] == [
            {"path": str(a), "format": "jsonl"},
            {"path": str(b), "format": "csv", "symbol_from": "file name", "symbol": "ETHUSDT"},
        ]
        assert described["bounds"] == {"from": format_timestamp(T0), "to": None}


CSV_ROWS = [(0, 10.0, 12.0, 9.0, 11.0, 5.0), (60, 11.0, 13.0, 10.0, 12.0, 6.0)]
E0 = 1_700_000_040  # epoch seconds of the first row


def csv_text(header: str, stamp: object, sep: str = ",") -> str:
    rows = [header] if header else []
    for offset, *prices in CSV_ROWS:
        rows.append(sep.join([str(stamp(E0 + offset))] + [str(p) for p in prices]))  # type: ignore[operator]
    return "\n".join(rows) + "\n"


class TestCsv:
    @pytest.mark.parametrize(
        ("header", "stamp", "sep"),
        [
            ("timestamp,open,high,low,close,volume", lambda s: s, ","),
            ("time,open,high,low,close,volume", lambda s: s * 1000, ","),
            ("open_time,Open,High,Low,Close,Volume", lambda s: s * 1_000_000, ","),
            ("ts,o,h,l,c,v", lambda s: s * 1_000_000_000, ","),
            ("Date;Open;High;Low;Close;Volume", lambda s: format_timestamp(s * S)[:19].replace("T", " "), ";"),
            ("datetime\topen\thigh\tlow\tclose\tvolume", lambda s: format_timestamp(s * S), "\t"),
            ('"Timestamp","Open","High","Low","Close","Volume"', lambda s: float(s), ","),
        ],
    )  # fmt: skip
    def test_header_and_time_forms_are_detected(self, tmp_path: Path, header: str, stamp: object, sep: str) -> None:
        """Header names in any case and order, delimiters, epoch s/ms/us/ns and ISO times give the same bars."""
        path = tmp_path / "BTCUSDT.csv"
        path.write_text(csv_text(header, stamp, sep))
        bars = list(open_data([path]))
        assert [(b.symbol, b.timestamp_ns, b.open, b.high, b.low, b.close, b.volume) for b in bars] == [
            ("BTCUSDT", (E0 + off) * S, o, h, lo, c, v) for off, o, h, lo, c, v in CSV_ROWS
        ]

    def test_headerless_binance_kline_archive(self, tmp_path: Path) -> None:
        """A file with no header is read as a Binance kline archive; its name gives the symbol."""
        path = tmp_path / "ETHUSDT-1m-2022-08-14.csv"
        path.write_text(
            "1660435200000,1980.5,1981.0,1979.0,1980.0,120.5,1660435259999,238000.25,500,60,119000,0\n"
            "1660435260000,1980.0,1982.0,1979.5,1981.5,99.0,1660435319999,196000.5,400,50,98000,0\n"
        )
        first, second = list(open_data([path]))
        assert (first.symbol, first.timestamp_ns, first.close, first.volume, first.volume_quote) == (
            "ETHUSDT", 1_660_435_200 * S, 1980.0, 120.5, 238000.25)  # fmt: skip
        assert second.timestamp_ns - first.timestamp_ns == MINUTE

    def test_symbol_column_wins(self, tmp_path: Path) -> None:
        """A symbol column names each row's symbol, whatever the file is called."""
        path = tmp_path / "bars.csv"
        path.write_text(
            "symbol,timestamp,open,high,low,close\nETHUSDT,1700000000,1,1,1,1\nBTCUSDT,1700000000,2,2,2,2\n"
        )
        assert [b.symbol for b in open_data([path], symbol="XRP")] == ["ETHUSDT", "BTCUSDT"]

    def test_symbol_argument_over_file_name(self, tmp_path: Path) -> None:
        """Without a symbol column the symbol argument names the bars; without it, the file name stem."""
        path = tmp_path / "some bars.csv"
        path.write_text(csv_text("timestamp,open,high,low,close,volume", lambda s: s))
        assert {b.symbol for b in open_data([path], symbol="SOLUSDT")} == {"SOLUSDT"}
        assert {b.symbol for b in open_data([path])} == {"some bars"}

    def test_missing_column_names_what_is_missing_and_found(self, tmp_path: Path) -> None:
        """A header without a needed column is refused at open, naming the column and what was found."""
        path = tmp_path / "x.csv"
        path.write_text("timestamp,open,high,low,volume\n1700000000,1,1,1,1\n")
        with pytest.raises(DataError, match=r"x\.csv:1: CSV header has no close column \(found: timestamp, open"):
            open_data([path])

    def test_empty_csv_is_refused(self, tmp_path: Path) -> None:
        """An empty CSV file is refused at open."""
        path = tmp_path / "x.csv"
        path.write_text("\n")
        with pytest.raises(DataError, match="empty file"):
            open_data([path])

    @pytest.mark.parametrize(
        ("row", "reason"),
        [
            ("1700000060,1,0.5,1,1,1", "Candle.high: must be >= open, close and low"),
            ("1700000060,1,2,x,1,1", "Candle.low: expected a number, got 'x'"),
            ("1700000060,1,2", "expected at least 6 columns, got 3"),
            ("soon,1,2,1,1,1", "expected RFC 3339 time, got 'soon'"),
            ("1700000060,,2,1,1,1", "Candle.open: required"),
        ],
    )
    def test_bad_csv_row_is_named(self, tmp_path: Path, row: str, reason: str) -> None:
        """A bad bar is skipped and reported with file, line and reason; the rows around it are kept."""
        path = tmp_path / "BTCUSDT.csv"
        path.write_text(f"timestamp,open,high,low,close,volume\n1700000000,1,1,1,1,1\n{row}\n1700000120,1,1,1,1,1\n")
        data = open_data([path])
        assert len(list(data)) == 2
        (bad,) = data.bad.kept
        assert (bad.path, bad.line) == (str(path), 3)
        assert reason in bad.reason

    def test_csv_and_jsonl_merge(self, tmp_path: Path) -> None:
        """Bars from a CSV and ticks from JSON lines merge into one time-ordered stream."""
        bars = tmp_path / "ETHUSDT.csv"
        bars.write_text(f"timestamp,open,high,low,close\n{T0 // S},1,1,1,1\n{T0 // S + 60},1,1,1,1\n")
        ticks = write_jsonl(tmp_path / "t.jsonl", [tick(T0 + 30 * S), tick(T0 + 90 * S)])
        assert [(e.kind, (e.timestamp_ns - T0) // S) for e in open_data([bars, ticks])] == [
            ("candle", 0), ("tick", 30), ("candle", 60), ("tick", 90)]  # fmt: skip


class TestBarInterval:
    def test_candles_give_their_most_common_gap(self, tmp_path: Path) -> None:
        """The bar interval is the most common gap between a symbol's consecutive candles (a missing bar aside)."""
        minutes = [0, 1, 2, 4, 5, 6]
        rows = "".join(f"{T0 // S + 60 * m},1,1,1,1\n" for m in minutes)
        path = tmp_path / "BTCUSDT.csv"
        path.write_text("timestamp,open,high,low,close\n" + rows)
        assert open_data([path]).bar_interval_ns() == MINUTE

    def test_ticks_have_none(self, tmp_path: Path) -> None:
        """Tick data has no bar interval: the caller samples at its own."""
        assert open_data([write_jsonl(tmp_path / "a.jsonl", [tick(T0), tick(T0 + S)])]).bar_interval_ns() is None


class TestSpan:
    def test_first_and_last_event_over_all_files_within_bounds(self, tmp_path: Path) -> None:
        """span() is the earliest and latest event time of all files, the bounds applied."""
        a = write_jsonl(tmp_path / "a.jsonl", [tick(T0 + S), tick(T0 + 5 * S)])
        b = write_jsonl(tmp_path / "b.jsonl", [tick(T0), tick(T0 + 3 * S), "{bad"])
        assert open_data([a, b]).span() == (T0, T0 + 5 * S)
        assert open_data([a, b], start_ns=T0 + S, end_ns=T0 + 4 * S).span() == (T0 + S, T0 + 3 * S)

    def test_no_events(self, tmp_path: Path) -> None:
        """Files with no event in the bounds have no span."""
        path = write_jsonl(tmp_path / "a.jsonl", [tick(T0)])
        assert open_data([path], start_ns=T0 + S).span() is None


class TestTimestamps:
    @pytest.mark.parametrize(
        "stamp",
        ["2022-08-14T00:00:00.000Z", "2022-08-14T23:59:59Z", "2022-08-14T07:08:09.123456789Z", "2022-08-14T07:08:09",
         "2022-08-14T07:08:09.5+00:00", "2022-08-14T07:08:09+02:00", "2022-08-14 07:08:09Z"],
    )  # fmt: skip
    def test_candle_times_read_as_the_decoder_reads_them(self, tmp_path: Path, stamp: str) -> None:
        """The reader's shortcut for candle times gives what sdk's decoder gives, whatever the form."""
        line = {"symbol": "X", "timestamp": stamp, "type": "candle", "open": 1, "high": 1, "low": 1, "close": 1}
        path = tmp_path / "a.jsonl"
        path.write_text(json.dumps(line) + "\n")
        (candle,) = list(open_data([path]))
        assert candle.timestamp_ns == parse_timestamp("x", stamp)

    @pytest.mark.parametrize("stamp", ["2022-08-14T00:60:00Z", "2022-08-14T00:00:61Z", "2022-08-14T24:00:00Z"])
    def test_impossible_candle_time_is_a_bad_row(self, tmp_path: Path, stamp: str) -> None:
        """A minute or second past 59 (or hour past 23) is no time: the row is bad, as the decoder says."""
        line = {"symbol": "X", "timestamp": stamp, "type": "candle", "open": 1, "high": 1, "low": 1, "close": 1}
        path = tmp_path / "a.jsonl"
        path.write_text(json.dumps(line) + "\n")
        data = open_data([path])
        assert list(data) == []
        assert "expected RFC 3339 time" in data.bad.kept[0].reason
