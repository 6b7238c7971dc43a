"""sdk.indicators against established references (TA-Lib, pandas) on generated data, to 1e-9 relative.

Each indicator is fed a generated random walk (prices near 60,000, as BTC) one value at a time and
compared, value by value and warm-up included (None where the reference gives NaN), with TA-Lib's
function of the same name, or with pandas for VWAP (TA-Lib has none). That the work per update does
not grow with the period is checked by counting the lines the indicator executes (sys.settrace),
never by timing.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from types import FrameType
from typing import Any

import numpy as np
import pandas as pd
import pytest
import talib

from sdk import Candle, ConfigError, Tick, Trade, indicators
from sdk.indicators import ATR, EMA, RSI, SMA, VWAP, Bands, BollingerBands, RollingHigh, RollingLow, ZScore

REL = 1e-9
N = 3000
PERIODS = (3, 14, 50)
DAY_NS = 86_400 * 10**9
T0 = 1_704_067_200 * 10**9  # 2024-01-01T00:00:00Z


def walk(seed: int, n: int = N) -> np.ndarray:
    """Closes of a geometric random walk from 60,000 with 0.1 % steps."""
    rng = np.random.default_rng(seed)
    return 60_000.0 * np.exp(np.cumsum(rng.normal(0.0, 0.001, n)))


def bars(seed: int, n: int = N) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """High, low and close of generated bars (high >= close >= low)."""
    close = walk(seed, n)
    rng = np.random.default_rng(seed + 1000)
    high = close * (1 + np.abs(rng.normal(0.0, 0.001, n)))
    low = close * (1 - np.abs(rng.normal(0.0, 0.001, n)))
    return high, low, close


def feed(update: Callable[[float], float | None], values: Sequence[float]) -> np.ndarray:
    """The indicator's value after each update, NaN for None."""
    return np.array([math.nan if (v := update(float(x))) is None else v for x in values])


def assert_matches(ours: np.ndarray, reference: np.ndarray, *, floor: float = 0.0) -> None:
    """Same warm-up (NaN where the reference has NaN, a number everywhere else) and values within
    1e-9 relative (or of ``floor``, for values that cross zero)."""
    ours_nan, ref_nan = np.isnan(ours), np.isnan(reference)
    assert (ours_nan == ref_nan).all(), f"warm-up differs at index {np.flatnonzero(ours_nan != ref_nan)[:5]}"
    assert np.isfinite(ours[~ours_nan]).all()
    scale = np.maximum(np.abs(reference[~ref_nan]), floor)
    error = np.abs(ours[~ours_nan] - reference[~ref_nan]) / scale
    assert error.max(initial=0.0) <= REL, f"largest relative error {error.max()} at {np.argmax(error)}"


class TestAgainstTaLib:
    @pytest.mark.parametrize("period", PERIODS)
    def test_sma(self, period: int) -> None:
        """SMA equals TA-Lib's SMA, warm-up included."""
        close = walk(1)
        assert_matches(feed(SMA(period=period).update, close), talib.SMA(close, period))

    @pytest.mark.parametrize("period", PERIODS)
    def test_ema(self, period: int) -> None:
        """EMA equals TA-Lib's EMA (seeded with the mean of the first period values)."""
        close = walk(2)
        assert_matches(feed(EMA(period=period).update, close), talib.EMA(close, period))

    @pytest.mark.parametrize("period", (*PERIODS, 2))
    def test_rsi(self, period: int) -> None:
        """RSI equals TA-Lib's RSI (Wilder), first value after period + 1 prices."""
        close = walk(3)
        assert_matches(feed(RSI(period=period).update, close), talib.RSI(close, period))

    @pytest.mark.parametrize("period", (*PERIODS, 1))
    def test_atr(self, period: int) -> None:
        """ATR equals TA-Lib's ATR (Wilder) on high/low/close bars, first value after period + 1 bars."""
        high, low, close = bars(4)
        atr = ATR(period=period)
        ours = np.array(
            [
                math.nan if (v := atr.update(*map(float, bar))) is None else v
                for bar in zip(high, low, close, strict=True)
            ]
        )
        assert_matches(ours, talib.ATR(high, low, close, period))

    @pytest.mark.parametrize("period", PERIODS)
    @pytest.mark.parametrize("k", (2.0, 1.5))
    def test_bollinger_bands(self, period: int, k: float) -> None:
        """Mid, upper and lower equal TA-Lib's BBANDS (population std); width is (upper - lower) / mid."""
        close = walk(5)
        bands = BollingerBands(period=period, k=k)
        values = [bands.update(float(x)) for x in close]
        upper, mid, lower = talib.BBANDS(close, period, k, k)
        for name, reference in (("mid", mid), ("upper", upper), ("lower", lower)):
            assert_matches(np.array([math.nan if v is None else getattr(v, name) for v in values]), reference)
        width = np.array([math.nan if v is None else v.width for v in values])
        assert_matches(width, (upper - lower) / mid)

    @pytest.mark.parametrize("period", PERIODS)
    def test_zscore(self, period: int) -> None:
        """ZScore equals (x - SMA) / STDDEV with TA-Lib's SMA and population STDDEV (1e-9 of max(|z|, 1))."""
        close = walk(6)
        reference = (close - talib.SMA(close, period)) / talib.STDDEV(close, period, 1.0)
        assert_matches(feed(ZScore(period=period).update, close), reference, floor=1.0)

    @pytest.mark.parametrize("period", (*PERIODS, 1))
    def test_rolling_high_and_low(self, period: int) -> None:
        """RollingHigh and RollingLow equal TA-Lib's MAX and MIN."""
        close = walk(7)
        high = talib.MAX(close, period) if period > 1 else close
        low = talib.MIN(close, period) if period > 1 else close
        assert_matches(feed(RollingHigh(period=period).update, close), high)
        assert_matches(feed(RollingLow(period=period).update, close), low)

    def test_sample_std_option(self) -> None:
        """ddof=1 gives the sample standard deviation, as pandas' rolling std does by default."""
        close = walk(8, 200)
        bands = BollingerBands(period=20, k=1.0, ddof=1)
        ours = np.array([math.nan if (b := bands.update(float(x))) is None else b.upper - b.mid for x in close])
        assert_matches(ours, pd.Series(close).rolling(20).std().to_numpy())


class TestVwapAgainstPandas:
    def test_cumulative(self) -> None:
        """Cumulative VWAP equals cumsum(price * volume) / cumsum(volume)."""
        price, volume = walk(9), np.random.default_rng(9).uniform(0.0, 3.0, N)
        vwap = VWAP()
        ours = np.array([vwap.update(float(p), float(v)) for p, v in zip(price, volume, strict=True)], dtype=float)
        p, v = pd.Series(price), pd.Series(volume)
        assert_matches(ours, ((p * v).cumsum() / v.cumsum()).to_numpy())

    @pytest.mark.parametrize("window", PERIODS)
    def test_rolling(self, window: int) -> None:
        """VWAP(window=N) equals rolling(N) sums of price * volume over volume, warm-up included."""
        price, volume = walk(10), np.random.default_rng(10).uniform(0.1, 3.0, N)
        vwap = VWAP(window=window)
        ours = np.array(
            [
                math.nan if (x := vwap.update(float(p), float(v))) is None else x
                for p, v in zip(price, volume, strict=True)
            ]
        )
        p, v = pd.Series(price), pd.Series(volume)
        assert_matches(ours, ((p * v).rolling(window).sum() / v.rolling(window).sum()).to_numpy())

    def test_daily_reset(self) -> None:
        """With reset_every_ns of a day, VWAP equals pandas' per-UTC-day cumulative VWAP."""
        n = 2000
        price, volume = walk(11, n), np.random.default_rng(11).uniform(0.1, 3.0, n)
        stamps = T0 + np.arange(n, dtype=np.int64) * 300 * 10**9  # 5-minute steps: about 7 days
        vwap = VWAP(reset_every_ns=DAY_NS)
        ours = np.array(
            [vwap.update(float(p), float(v), int(t)) for p, v, t in zip(price, volume, stamps, strict=True)],
            dtype=float,
        )
        frame = pd.DataFrame({"pv": price * volume, "v": volume, "day": stamps // DAY_NS})
        grouped = frame.groupby("day")
        assert_matches(ours, (grouped["pv"].cumsum() / grouped["v"].cumsum()).to_numpy())

    def test_no_volume_is_not_ready(self) -> None:
        """While the volume summed is 0 the VWAP has no value."""
        vwap = VWAP()
        assert vwap.update(100.0, 0.0) is None and not vwap.ready
        assert vwap.update(102.0, 2.0) == 102.0 and vwap.ready


class TestNaNFree:
    def test_flat_prices(self) -> None:
        """Flat prices give finite values: RSI 50, bands of width 0 (percent_b 0.5), z-score 0, ATR 0."""
        assert feed(RSI(period=3).update, [5.0] * 6)[-1] == 50.0
        bands = BollingerBands(period=3)
        for _ in range(3):
            last = bands.update(5.0)
        assert last == Bands(mid=5.0, upper=5.0, lower=5.0, width=0.0)
        assert last.percent_b(5.0) == 0.5
        assert feed(ZScore(period=3).update, [5.0] * 4)[-1] == 0.0
        atr = ATR(period=2)
        assert [atr.update(5.0, 5.0, 5.0) for _ in range(3)] == [None, None, 0.0]

    def test_zero_mid_width(self) -> None:
        """Bands around a zero mean (a spread, a return) have width 0, not a division by zero."""
        bands = BollingerBands(period=2)
        bands.update(-1.0)
        value = bands.update(1.0)
        assert value is not None and (value.mid, value.upper, value.lower, value.width) == (0.0, 2.0, -2.0, 0.0)

    @pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
    def test_non_finite_input_is_rejected(self, bad: float) -> None:
        """NaN or infinity in raises ValueError naming the indicator and argument; the state is unchanged."""
        sma = SMA(period=2)
        sma.update(1.0)
        with pytest.raises(ValueError, match=r"SMA\.update: value must be finite"):
            sma.update(bad)
        assert sma.update(3.0) == 2.0
        with pytest.raises(ValueError, match=r"ATR\.update: low must be finite"):
            ATR(period=2).update(1.0, bad, 1.0)
        with pytest.raises(ValueError, match=r"VWAP\.update: volume must be finite"):
            VWAP().update(1.0, bad)

    def test_non_number_input_is_rejected(self) -> None:
        """A string or bool is not a price: ValueError naming the argument."""
        with pytest.raises(ValueError, match=r"EMA\.update: value must be a number, got str '1'"):
            EMA(period=2).update("1")  # type: ignore[arg-type]
        with pytest.raises(ValueError, match=r"RollingHigh\.update: value must be a number, got bool"):
            RollingHigh(period=2).update(True)


class TestArguments:
    @pytest.mark.parametrize(
        ("build", "message"),
        [
            (lambda: SMA(period=0), r"SMA\.period: must be an integer >= 1, got 0"),
            (lambda: EMA(period=2.5), r"EMA\.period: must be an integer >= 1, got 2\.5"),
            (lambda: RSI(period=True), r"RSI\.period: must be an integer >= 1, got True"),
            (lambda: ATR(period=-3), r"ATR\.period: must be an integer >= 1, got -3"),
            (lambda: BollingerBands(period=1), r"BollingerBands\.period: must be an integer >= 2, got 1"),
            (lambda: BollingerBands(k=0), r"BollingerBands\.k: must be a number > 0"),
            (lambda: BollingerBands(ddof=2), r"BollingerBands\.ddof: must be 0 \(population\) or 1"),
            (lambda: ZScore(period=1), r"ZScore\.period: must be an integer >= 2, got 1"),
            (lambda: RollingLow(period=0), r"RollingLow\.period: must be an integer >= 1, got 0"),
            (lambda: VWAP(window=0), r"VWAP\.period: must be an integer >= 1, got 0"),
            (lambda: VWAP(reset_every_ns=0), r"VWAP\.reset_every_ns: must be an integer > 0"),
        ],
    )
    def test_bad_argument_names_it(self, build: Callable[[], object], message: str) -> None:
        """A bad constructor argument raises ConfigError (a ValueError) naming the class and argument."""
        with pytest.raises(ConfigError, match=message):
            build()

    def test_keyword_only(self) -> None:
        """Constructors take keywords only: SMA(20) is a TypeError."""
        with pytest.raises(TypeError):
            SMA(20)  # type: ignore[misc]

    def test_reset_every_needs_timestamps(self) -> None:
        """A session-resetting VWAP updated without a timestamp says so."""
        with pytest.raises(ValueError, match="timestamp_ns"):
            VWAP(reset_every_ns=DAY_NS).update(1.0, 1.0)


def tick(mid: float, *, last: float | None = None, ts: int = T0) -> Tick:
    return Tick(symbol="BTCUSDT", timestamp_ns=ts, bid_price=mid - 0.5, bid_size=1.0, ask_price=mid + 0.5,
                ask_size=1.0, last_price=last)  # fmt: skip


def candle(o: float, h: float, low: float, c: float, *, volume: float | None = 2.0, ts: int = T0) -> Candle:
    return Candle(symbol="BTCUSDT", timestamp_ns=ts, open=o, high=h, low=low, close=c, volume=volume)


class TestEvents:
    def test_tick_prices(self) -> None:
        """update_tick uses the mid by default, or the bid, ask or last price asked for."""
        assert SMA(period=1).update_tick(tick(100.0)) == 100.0
        assert SMA(period=1).update_tick(tick(100.0), price="bid") == 99.5
        assert SMA(period=1).update_tick(tick(100.0), price="ask") == 100.5
        assert SMA(period=1).update_tick(tick(100.0, last=100.25), price="last") == 100.25

    def test_tick_without_last_price(self) -> None:
        """Asking a quote-only tick for its last price is a ValueError that suggests the mid."""
        with pytest.raises(ValueError, match=r"no last_price.*price='mid'"):
            SMA(period=1).update_tick(tick(100.0), price="last")

    def test_bad_price_name(self) -> None:
        """An unknown price name is a ValueError listing the known ones."""
        with pytest.raises(ValueError, match="price: expected one of mid, bid, ask, last, got 'close'"):
            SMA(period=1).update_tick(tick(100.0), price="close")  # type: ignore[arg-type]
        with pytest.raises(ValueError, match="price: expected one of open, high"):
            SMA(period=1).update_candle(candle(1, 2, 1, 1), price="mid")  # type: ignore[arg-type]

    def test_candle_prices(self) -> None:
        """update_candle uses the close by default; RollingHigh the high and RollingLow the low."""
        bar = candle(10.0, 16.0, 7.0, 13.0)
        assert SMA(period=1).update_candle(bar) == 13.0
        assert RollingHigh(period=1).update_candle(bar) == 16.0
        assert RollingLow(period=1).update_candle(bar) == 7.0
        assert SMA(period=1).update_candle(bar, price="hlc3") == 12.0
        assert SMA(period=1).update_candle(bar, price="ohlc4") == 11.5
        assert SMA(period=1).update_candle(bar, price="hl2") == 11.5
        assert SMA(period=1).update_candle(bar, price="open") == 10.0

    def test_trade_price(self) -> None:
        """update_trade uses the trade's price; VWAP also its quantity."""
        trade = Trade(symbol="BTCUSDT", timestamp_ns=T0, last_price=101.0, volume=3.0)
        assert EMA(period=1).update_trade(trade) == 101.0
        assert VWAP().update_trade(trade) == 101.0

    def test_atr_on_candles_and_ticks(self) -> None:
        """ATR takes a candle's high, low and close, and a tick's mid as all three."""
        atr = ATR(period=1)
        atr.update_candle(candle(10.0, 12.0, 9.0, 11.0))
        assert atr.update_candle(candle(11.0, 15.0, 10.0, 14.0)) == 5.0
        ticks = ATR(period=2)
        values = [ticks.update_tick(tick(m)) for m in (100.0, 101.0, 99.0)]
        assert values == [None, None, 1.5]
        assert ATR(period=1).update_trade(Trade(symbol="X", timestamp_ns=T0, last_price=1.0, volume=1.0)) is None

    def test_atr_rejects_high_below_low(self) -> None:
        """high < low is a ValueError that gives both."""
        with pytest.raises(ValueError, match=r"high must be >= low, got high=1\.0, low=2\.0"):
            ATR(period=1).update(1.0, 2.0, 1.5)

    def test_vwap_candle(self) -> None:
        """VWAP on candles weights the typical price by volume; a candle without volume is refused."""
        vwap = VWAP()
        vwap.update_candle(candle(10.0, 16.0, 7.0, 13.0, volume=1.0))  # typical 12
        assert vwap.update_candle(candle(13.0, 15.0, 12.0, 15.0, volume=3.0)) == pytest.approx((12 + 3 * 14) / 4)
        with pytest.raises(ValueError, match="the candle has no volume"):
            vwap.update_candle(candle(1.0, 1.0, 1.0, 1.0, volume=None))


class TestState:
    @pytest.mark.parametrize(
        "make", [lambda: SMA(period=3), lambda: EMA(period=3), lambda: RSI(period=3), lambda: ZScore(period=3),
                 lambda: BollingerBands(period=3), lambda: RollingHigh(period=3), lambda: RollingLow(period=3)],
    )  # fmt: skip
    def test_ready_and_reset(self, make: Callable[[], indicators.PriceIndicator[Any]]) -> None:
        """value is None and ready False until enough data; reset starts the warm-up again, same values."""
        indicator = make()
        prices = [float(x) for x in walk(12, 10)]
        assert (indicator.value, indicator.ready) == (None, False)
        first = [indicator.update(p) for p in prices]
        assert indicator.ready and indicator.value == first[-1]
        indicator.reset()
        assert (indicator.value, indicator.ready) == (None, False)
        assert [indicator.update(p) for p in prices] == first

    def test_vwap_reset(self) -> None:
        """VWAP.reset starts a new session by hand."""
        vwap = VWAP()
        vwap.update(100.0, 1.0)
        vwap.reset()
        assert not vwap.ready and vwap.update(50.0, 1.0) == 50.0

    def test_session_rolls_at_the_interval(self) -> None:
        """With reset_every_ns, the first update of a new day starts the VWAP afresh."""
        vwap = VWAP(reset_every_ns=DAY_NS)
        vwap.update(100.0, 1.0, T0 + DAY_NS - 1)
        assert vwap.update(200.0, 1.0, T0 + DAY_NS - 1) == 150.0
        assert vwap.update(300.0, 1.0, T0 + DAY_NS) == 300.0


def _lines(run: Callable[[], None]) -> int:
    """Lines executed inside sdk/indicators.py while ``run`` runs."""
    target = str(Path(indicators.__file__))
    count = 0

    def tracer(frame: FrameType, event: str, arg: object) -> Any:
        nonlocal count
        if frame.f_code.co_filename != target:
            return None
        if event == "line":
            count += 1
        return tracer

    sys.settrace(tracer)
    try:
        run()
    finally:
        sys.settrace(None)
    return count


def _makers(period: int) -> Iterator[tuple[str, Callable[[], Callable[[float], object]]]]:
    yield "SMA", lambda: SMA(period=period).update
    yield "EMA", lambda: EMA(period=period).update
    yield "RSI", lambda: RSI(period=period).update
    yield "ZScore", lambda: ZScore(period=period).update
    yield "BollingerBands", lambda: BollingerBands(period=period).update
    yield "RollingHigh", lambda: RollingHigh(period=period).update
    yield "RollingLow", lambda: RollingLow(period=period).update
    yield "ATR", lambda: (lambda atr: lambda x: atr.update(x, x, x))(ATR(period=period))
    yield "VWAP", lambda: (lambda vwap: lambda x: vwap.update(x, 1.0))(VWAP(window=period))


class TestConstantWork:
    def test_work_per_update_does_not_grow_with_the_period(self) -> None:
        """Lines executed per update after warm-up, averaged over 4,000 updates, are the same (within
        a few lines) at period 10 and at period 1,000: O(1), or amortised O(1) for the windows."""
        prices = [float(x) for x in walk(13, 5000)]
        for name, _ in _makers(10):
            counts = {}
            for period in (10, 1000):
                update = dict(_makers(period))[name]()
                for price in prices[:1000]:  # warm-up, not counted
                    update(price)
                counts[period] = _lines(lambda update=update: [update(p) for p in prices[1000:]]) / 4000  # type: ignore[misc]
            assert counts[1000] <= counts[10] + 3, f"{name}: {counts}"

    def test_history_is_bounded_by_the_window(self) -> None:
        """After 20 periods of data no indicator holds more than `period` values."""
        period = 25
        prices = [float(x) for x in walk(14, period * 20)]
        for name, make in _makers(period):
            update = make()
            for price in prices:
                update(price)
            owner = getattr(update, "__self__", None) or update.__closure__[0].cell_contents  # type: ignore[index]
            sizes = [len(v) for v in _state(owner) if hasattr(v, "__len__")]
            assert max(sizes, default=0) <= period, f"{name} holds {sizes}"


def _state(obj: object) -> Iterator[object]:
    """Every attribute value of an indicator and of its helpers (slotted objects)."""
    for cls in type(obj).__mro__:
        for slot in getattr(cls, "__slots__", ()):
            value = getattr(obj, slot, None)
            yield value
            if hasattr(value, "__slots__") and not isinstance(value, (int, float, str)):
                yield from _state(value)
