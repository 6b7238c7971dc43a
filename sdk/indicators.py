"""Incremental indicators for strategy authors: constant work per update, no history beyond the window.

Each indicator is a small object a strategy keeps per symbol and feeds one observation at a time:

    from sdk import indicators

    class Cross(Strategy[CrossConfig]):
        def __init__(self, config: CrossConfig) -> None:
            super().__init__(config)
            self.fast = indicators.SMA(period=config.fast)

        def on_candle(self, candle: Candle) -> None:
            fast = self.fast.update_candle(candle)   # None until `period` closes were seen
            if fast is not None and ...:

Model.
- ``update(...)`` takes plain floats (``update(price)``; ``ATR.update(high, low, close)``;
  ``VWAP.update(price, volume)``) and returns the new `value`. The event helpers pick the price
  from an SDK event: ``update_tick(tick, price="mid")`` (``"bid"``, ``"ask"``, ``"last"``),
  ``update_trade(trade)`` (its price) and ``update_candle(candle, price="close")`` (``"open"``,
  ``"high"``, ``"low"``, ``"hl2"``, ``"hlc3"``, ``"ohlc4"``), so one indicator class serves ticks
  and candles alike.
- `value` is None until the indicator has seen enough data (`ready`), then always a finite
  float (`BollingerBands`: a `Bands`). Inputs must be finite numbers: NaN or infinity raises
  ``ValueError`` naming the argument, so no NaN ever comes out.
- Every update costs O(1), whatever the period; `RollingHigh` and `RollingLow` are amortised O(1)
  (a monotonic deque: each value enters and leaves it once). Windowed indicators keep at most
  `period` values; the others keep a few numbers. Running sums are compensated (Neumaier), so
  long runs do not drift.
- Conventions follow TA-Lib, against which (and pandas) the tests check every indicator to 1e-9
  relative: `EMA` seeds with the mean of its first `period` values; `RSI` and `ATR` are Wilder's
  (seeded with the mean of the first `period` changes or true ranges, then smoothed by
  ``1/period``), so each needs ``period + 1`` observations; standard deviations are the
  population's (``ddof=0``) unless ``ddof=1`` is asked for.
- Constructors are keyword-only (``SMA(period=20)``) and reject a bad argument with
  `sdk.ConfigError` naming it (``SMA.period: must be an integer >= 1, got 0``), so an indicator
  built from a strategy's config fails like a bad config. `reset()` starts an indicator afresh.

Indicators are plain objects, not part of a strategy's saved state: a strategy that must keep them
across a hot reload rebuilds them from what its ``on_save`` kept, or lets them warm up again.
"""

from __future__ import annotations

import abc
import math
from collections import deque
from dataclasses import dataclass
from typing import ClassVar, Generic, Literal, TypeVar

from sdk._rolling import Sum as _Sum
from sdk._rolling import Window as _Window
from sdk.errors import ConfigError
from sdk.events import Candle, Tick, Trade

__all__ = [
    "ATR",
    "EMA",
    "RSI",
    "SMA",
    "VWAP",
    "Bands",
    "BollingerBands",
    "CandlePrice",
    "Indicator",
    "PriceIndicator",
    "RollingHigh",
    "RollingLow",
    "TickPrice",
    "ZScore",
    "candle_price",
    "tick_price",
]

T = TypeVar("T")

TickPrice = Literal["mid", "bid", "ask", "last"]
"""Which price of a `sdk.Tick` to use: the mid, the best bid or ask, or the last trade's price."""

CandlePrice = Literal["open", "high", "low", "close", "hl2", "hlc3", "ohlc4"]
"""Which price of a `sdk.Candle` to use: one of its four, or the mean of high+low, of high+low+close
(the typical price) or of all four."""


def tick_price(tick: Tick, price: TickPrice = "mid") -> float:
    """The ``price`` of ``tick``; ``"last"`` raises ``ValueError`` when the tick carries no last price."""
    if price == "mid":
        return tick.mid
    if price == "bid":
        return tick.bid_price
    if price == "ask":
        return tick.ask_price
    if price == "last":
        if tick.last_price is None:
            raise ValueError("price='last': this tick has no last_price (a quote-only tick); use price='mid'")
        return tick.last_price
    raise ValueError(f"price: expected one of mid, bid, ask, last, got {price!r}")


def candle_price(candle: Candle, price: CandlePrice = "close") -> float:
    """The ``price`` of ``candle`` (see `CandlePrice`)."""
    if price in ("open", "high", "low", "close"):
        value: float = getattr(candle, price)
        return value
    if price == "hl2":
        return (candle.high + candle.low) / 2
    if price == "hlc3":
        return (candle.high + candle.low + candle.close) / 3
    if price == "ohlc4":
        return (candle.open + candle.high + candle.low + candle.close) / 4
    raise ValueError(f"price: expected one of open, high, low, close, hl2, hlc3, ohlc4, got {price!r}")


def _period(owner: str, value: object, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ConfigError(f"{owner}.period", f"must be an integer >= {minimum}, got {value!r}")
    return value


def _finite(owner: str, name: str, value: float) -> float:
    if type(value) is float and math.isfinite(value):
        return value
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"{owner}.update: {name} must be a number, got {type(value).__name__} {value!r}")
    if not math.isfinite(value):
        raise ValueError(f"{owner}.update: {name} must be finite, got {value!r}")
    return float(value)


class Indicator(Generic[T]):
    """Base of every indicator: `value` (None until `ready`) and `reset`."""

    __slots__ = ("_value",)

    def __init__(self) -> None:
        self._value: T | None = None

    @property
    def value(self) -> T | None:
        """The latest value, or None while the indicator has not seen enough data."""
        return self._value

    @property
    def ready(self) -> bool:
        """Whether enough data has been seen for `value` to be set."""
        return self._value is not None

    def reset(self) -> None:
        """Forget everything seen: the indicator starts warming up again."""
        self._value = None


class PriceIndicator(Indicator[T], abc.ABC):
    """An indicator of one price series: `update` with a float, or with a tick, trade or candle."""

    __slots__ = ()
    candle_default: ClassVar[CandlePrice] = "close"

    @abc.abstractmethod
    def update(self, value: float) -> T | None:
        """Add one observation; return the new `value` (None until `ready`)."""

    def update_tick(self, tick: Tick, *, price: TickPrice = "mid") -> T | None:
        """Add the tick's ``price`` (`TickPrice`: its mid by default)."""
        return self.update(tick_price(tick, price))

    def update_trade(self, trade: Trade) -> T | None:
        """Add the trade's ``last_price``."""
        return self.update(trade.last_price)

    def update_candle(self, candle: Candle, *, price: CandlePrice | None = None) -> T | None:
        """Add the candle's ``price`` (`CandlePrice`; by default its close, its high for `RollingHigh`
        and its low for `RollingLow`)."""
        return self.update(candle_price(candle, self.candle_default if price is None else price))


class SMA(PriceIndicator[float]):
    """Simple moving average of the last ``period`` values; ready after ``period`` values."""

    __slots__ = ("_sum", "_values", "period")

    def __init__(self, *, period: int) -> None:
        super().__init__()
        self.period = _period("SMA", period)
        self._values: deque[float] = deque()
        self._sum = _Sum()

    def update(self, value: float) -> float | None:
        x = _finite("SMA", "value", value)
        values = self._values
        values.append(x)
        self._sum.add(x)
        if len(values) > self.period:
            self._sum.add(-values.popleft())
        if len(values) == self.period:
            self._value = self._sum.value / self.period
        return self._value

    def reset(self) -> None:
        super().reset()
        self._values.clear()
        self._sum = _Sum()


class EMA(PriceIndicator[float]):
    """Exponential moving average with ``alpha = 2 / (period + 1)``, seeded with the mean of the first
    ``period`` values (TA-Lib's convention); ready after ``period`` values."""

    __slots__ = ("_count", "_seed", "alpha", "period")

    def __init__(self, *, period: int) -> None:
        super().__init__()
        self.period = _period("EMA", period)
        self.alpha = 2.0 / (self.period + 1)
        self._count = 0
        self._seed = 0.0

    def update(self, value: float) -> float | None:
        x = _finite("EMA", "value", value)
        if self._value is not None:
            self._value = (x - self._value) * self.alpha + self._value
            return self._value
        self._count += 1
        self._seed += x
        if self._count == self.period:
            self._value = self._seed / self.period
        return self._value

    def reset(self) -> None:
        super().reset()
        self._count = 0
        self._seed = 0.0


def _wilder(average: float, x: float, period: int) -> float:
    return (average * (period - 1) + x) / period


class RSI(PriceIndicator[float]):
    """Wilder's relative strength index, 0 to 100, over ``period`` changes; ready after ``period + 1``
    values. With no movement at all over its averages it is 50 (TA-Lib says 0 there)."""

    __slots__ = ("_count", "_gain", "_loss", "_previous", "period")

    def __init__(self, *, period: int = 14) -> None:
        super().__init__()
        self.period = _period("RSI", period)
        self._previous: float | None = None
        self._count = 0
        self._gain = 0.0
        self._loss = 0.0

    def update(self, value: float) -> float | None:
        x = _finite("RSI", "value", value)
        previous, self._previous = self._previous, x
        if previous is None:
            return None
        change = x - previous
        gain, loss = (change, 0.0) if change > 0 else (0.0, -change)
        self._count += 1
        if self._count > self.period:
            self._gain = _wilder(self._gain, gain, self.period)
            self._loss = _wilder(self._loss, loss, self.period)
        else:
            self._gain += gain
            self._loss += loss
            if self._count < self.period:
                return None
            self._gain /= self.period
            self._loss /= self.period
        total = self._gain + self._loss
        self._value = 50.0 if total == 0 else 100.0 * self._gain / total
        return self._value

    def reset(self) -> None:
        super().reset()
        self._previous = None
        self._count = 0
        self._gain = 0.0
        self._loss = 0.0


class ATR(Indicator[float]):
    """Wilder's average true range over ``period`` bars; ready after ``period + 1`` bars (the first
    bar has no previous close, so its true range is not counted: TA-Lib's convention).

    On a candle it uses high, low and close; on a tick or trade, the one price as all three, so
    the true range is the move since the previous price."""

    __slots__ = ("_close", "_count", "_sum", "period")

    def __init__(self, *, period: int = 14) -> None:
        super().__init__()
        self.period = _period("ATR", period)
        self._close: float | None = None
        self._count = 0
        self._sum = 0.0

    def update(self, high: float, low: float, close: float) -> float | None:
        """Add one bar; return the new `value`. ``high`` must be >= ``low``."""
        high, low = _finite("ATR", "high", high), _finite("ATR", "low", low)
        close = _finite("ATR", "close", close)
        if high < low:
            raise ValueError(f"ATR.update: high must be >= low, got high={high!r}, low={low!r}")
        previous, self._close = self._close, close
        if previous is None:
            return None
        true_range = max(high - low, abs(high - previous), abs(low - previous))
        if self._value is not None:
            self._value = _wilder(self._value, true_range, self.period)
            return self._value
        self._count += 1
        self._sum += true_range
        if self._count == self.period:
            self._value = self._sum / self.period
        return self._value

    def update_candle(self, candle: Candle) -> float | None:
        """Add the candle's high, low and close."""
        return self.update(candle.high, candle.low, candle.close)

    def update_tick(self, tick: Tick, *, price: TickPrice = "mid") -> float | None:
        """Add the tick's ``price`` as high, low and close."""
        value = tick_price(tick, price)
        return self.update(value, value, value)

    def update_trade(self, trade: Trade) -> float | None:
        """Add the trade's price as high, low and close."""
        return self.update(trade.last_price, trade.last_price, trade.last_price)

    def reset(self) -> None:
        super().reset()
        self._close = None
        self._count = 0
        self._sum = 0.0


@dataclass(frozen=True, slots=True)
class Bands:
    """Bollinger bands: ``mid`` (the SMA), ``upper`` and ``lower`` (``mid ± k * std``) and ``width``,
    the bandwidth ``(upper - lower) / mid`` (0 when ``mid`` is 0)."""

    mid: float
    upper: float
    lower: float
    width: float

    def percent_b(self, price: float) -> float:
        """Where ``price`` sits in the bands: 0 at ``lower``, 1 at ``upper`` (0.5 when they meet)."""
        span = self.upper - self.lower
        return 0.5 if span == 0 else (price - self.lower) / span


class BollingerBands(PriceIndicator[Bands]):
    """Bollinger bands over the last ``period`` values, ``k`` standard deviations wide each side
    (population standard deviation unless ``ddof=1``); ready after ``period`` values."""

    __slots__ = ("_window", "ddof", "k", "period")

    def __init__(self, *, period: int = 20, k: float = 2.0, ddof: int = 0) -> None:
        super().__init__()
        self.period = _period("BollingerBands", period, minimum=2)
        if isinstance(k, bool) or not isinstance(k, (int, float)) or not 0 < k < math.inf:
            raise ConfigError("BollingerBands.k", f"must be a number > 0 (standard deviations), got {k!r}")
        if ddof not in (0, 1):
            raise ConfigError("BollingerBands.ddof", f"must be 0 (population) or 1 (sample), got {ddof!r}")
        self.k = float(k)
        self.ddof = ddof
        self._window = _Window(self.period)

    def update(self, value: float) -> Bands | None:
        self._window.push(_finite("BollingerBands", "value", value))
        if not self._window.full:
            return None
        mid = self._window.mean
        offset = self.k * self._window.std(self.ddof)
        upper, lower = mid + offset, mid - offset
        self._value = Bands(mid=mid, upper=upper, lower=lower, width=0.0 if mid == 0 else (upper - lower) / mid)
        return self._value

    def reset(self) -> None:
        super().reset()
        self._window.clear()


class ZScore(PriceIndicator[float]):
    """How many standard deviations the latest value is from the mean of the last ``period`` values
    (itself included; population standard deviation unless ``ddof=1``); 0 when they are all equal.
    Ready after ``period`` values."""

    __slots__ = ("_window", "ddof", "period")

    def __init__(self, *, period: int = 20, ddof: int = 0) -> None:
        super().__init__()
        self.period = _period("ZScore", period, minimum=2)
        if ddof not in (0, 1):
            raise ConfigError("ZScore.ddof", f"must be 0 (population) or 1 (sample), got {ddof!r}")
        self.ddof = ddof
        self._window = _Window(self.period)

    def update(self, value: float) -> float | None:
        x = _finite("ZScore", "value", value)
        self._window.push(x)
        if not self._window.full:
            return None
        std = self._window.std(self.ddof)
        self._value = 0.0 if std == 0 else (x - self._window.mean) / std
        return self._value

    def reset(self) -> None:
        super().reset()
        self._window.clear()


class _Extreme(PriceIndicator[float]):
    """The highest (or lowest) of the last ``period`` values, from a monotonic deque."""

    __slots__ = ("_count", "_deque", "period")
    _sign: ClassVar[float] = 1.0
    _name: ClassVar[str] = ""

    def __init__(self, *, period: int) -> None:
        super().__init__()
        self.period = _period(self._name, period)
        self._deque: deque[tuple[int, float]] = deque()  # (index, value), values strictly decreasing * sign
        self._count = 0

    def update(self, value: float) -> float | None:
        x = _finite(self._name, "value", value)
        window, sign = self._deque, self._sign
        while window and window[-1][1] * sign <= x * sign:
            window.pop()
        window.append((self._count, x))
        self._count += 1
        if window[0][0] <= self._count - 1 - self.period:
            window.popleft()
        if self._count >= self.period:
            self._value = window[0][1]
        return self._value

    def reset(self) -> None:
        super().reset()
        self._deque.clear()
        self._count = 0


class RollingHigh(_Extreme):
    """The highest of the last ``period`` values (on a candle, of its highs); ready after ``period``."""

    __slots__ = ()
    _name = "RollingHigh"
    candle_default = "high"


class RollingLow(_Extreme):
    """The lowest of the last ``period`` values (on a candle, of its lows); ready after ``period``."""

    __slots__ = ()
    _sign = -1.0
    _name = "RollingLow"
    candle_default = "low"


class VWAP(Indicator[float]):
    """Volume-weighted average price: ``sum(price * volume) / sum(volume)``.

    Cumulative by default (since the start or the last `reset`); over the last ``window`` updates
    when given (ready after ``window`` updates); and, with ``reset_every_ns``, started afresh when an
    update's ``timestamp_ns`` enters a new interval of that length since the epoch (86_400 * 10**9
    for a UTC-day VWAP). Not ready while the volume summed is 0.
    """

    __slots__ = ("_interval", "_pv", "_rows", "_volume", "reset_every_ns", "window")

    def __init__(self, *, window: int | None = None, reset_every_ns: int | None = None) -> None:
        super().__init__()
        self.window = None if window is None else _period("VWAP", window)
        if reset_every_ns is not None and (
            isinstance(reset_every_ns, bool) or not isinstance(reset_every_ns, int) or reset_every_ns <= 0
        ):
            raise ConfigError("VWAP.reset_every_ns", f"must be an integer > 0 (nanoseconds), got {reset_every_ns!r}")
        self.reset_every_ns = reset_every_ns
        self._rows: deque[tuple[float, float]] = deque()
        self._pv = _Sum()
        self._volume = _Sum()
        self._interval: int | None = None

    def update(self, price: float, volume: float, timestamp_ns: int | None = None) -> float | None:
        """Add ``volume`` traded at ``price`` (``volume`` >= 0); ``timestamp_ns`` is needed with
        ``reset_every_ns``. Return the new `value`."""
        price, volume = _finite("VWAP", "price", price), _finite("VWAP", "volume", volume)
        if volume < 0:
            raise ValueError(f"VWAP.update: volume must be >= 0, got {volume!r}")
        if self.reset_every_ns is not None:
            self._roll_session(timestamp_ns, self.reset_every_ns)
        pv = price * volume
        self._pv.add(pv)
        self._volume.add(volume)
        if self.window is not None:
            self._rows.append((pv, volume))
            if len(self._rows) > self.window:
                old_pv, old_volume = self._rows.popleft()
                self._pv.add(-old_pv)
                self._volume.add(-old_volume)
            if len(self._rows) < self.window:
                return None
        total = self._volume.value
        self._value = self._pv.value / total if total > 0 else None
        return self._value

    def update_trade(self, trade: Trade) -> float | None:
        """Add the trade's ``last_price`` and ``volume``."""
        return self.update(trade.last_price, trade.volume, trade.timestamp_ns)

    def update_candle(self, candle: Candle, *, price: CandlePrice = "hlc3") -> float | None:
        """Add the candle's volume at its ``price`` (the typical price by default); a candle
        without a volume raises ``ValueError``."""
        if candle.volume is None:
            raise ValueError("VWAP.update_candle: the candle has no volume")
        return self.update(candle_price(candle, price), candle.volume, candle.timestamp_ns)

    def _roll_session(self, timestamp_ns: int | None, every: int) -> None:
        if isinstance(timestamp_ns, bool) or not isinstance(timestamp_ns, int):
            raise ValueError(
                f"VWAP.update: timestamp_ns (an int) is required with reset_every_ns, got {timestamp_ns!r}"
            )
        interval = timestamp_ns // every
        if self._interval is not None and interval != self._interval:
            self.reset()
        self._interval = interval

    def reset(self) -> None:
        super().reset()
        self._rows.clear()
        self._pv = _Sum()
        self._volume = _Sum()
        self._interval = None
