"""RiskManager: every rule at its boundary, exact labels and messages, fail-closed prices, kill switches,
rate windows, duplicate ids, daily counters across midnight and restarts; WorkingOrders sums."""

from __future__ import annotations

import itertools
import math
import random
from collections.abc import Callable, Iterable, Mapping
from dataclasses import replace
from datetime import date

import pytest

from host.config import RiskConfig
from host.feeds.health import FeedHealth
from host.orders import OrderIntent, OrderState, OrderStatus, WorkingOrders, scan
from host.risk import APPROVED, QUOTA_RULES, MemoryCounterStore, Rejected, RiskManager, Rule
from sdk.events import OrderType, Side, Tick
from tests.helpers import NOON, SECOND, ManualClocks

BTC, ETH, SOL = "BTCUSDT", "ETHUSDT", "SOLUSDT"
_ids = itertools.count()


class FakeMarket:
    """References set by the test: ``set`` keeps a price a fixed age old, ``set_at`` stamps it once."""

    def __init__(self, clock: ManualClocks) -> None:
        self.clock = clock
        self.quotes: dict[str, tuple[float, int, bool]] = {}  # symbol -> (price, age or stamp ns, is a stamp)

    def set(self, symbol: str, price: float, age_s: float = 0.0) -> None:
        self.quotes[symbol] = (price, round(age_s * SECOND), False)

    def set_at(self, symbol: str, price: float, stamp_ns: int) -> None:
        self.quotes[symbol] = (price, stamp_ns, True)

    def reference(self, symbol: str) -> tuple[float, int] | None:
        quote = self.quotes.get(symbol)
        if quote is None:
            return None
        price, when, stamped = quote
        return price, when if stamped else self.clock.now_ns() - when


class FakeBook:
    """Positions per strategy, working orders (a plain list or a WorkingOrders store), account figures."""

    def __init__(self, store: bool = False) -> None:
        self.held: dict[str, dict[str, float]] = {}
        self.store = store
        self.orders: list[OrderState] | WorkingOrders = WorkingOrders() if store else []
        self.pnl: dict[date, float] = {}
        self.days_asked: list[date] = []
        self.equity_value = 100_000.0
        self.peak = 100_000.0
        self.cash = 100_000.0

    def hold(self, strategy: str, symbol: str, quantity: float) -> None:
        self.held.setdefault(strategy, {})[symbol] = quantity

    def work(self, strategy: str, symbol: str, side: Side, quantity: float, filled: float = 0.0) -> OrderState:
        intent = OrderIntent(f"w{next(_ids)}", strategy, symbol, side, OrderType.MARKET, quantity)
        status = OrderStatus.PARTIALLY_FILLED if filled else OrderStatus.ACCEPTED
        state = OrderState(intent, status, filled_quantity=filled)
        if isinstance(self.orders, WorkingOrders):
            self.orders.update(state)
        else:
            self.orders.append(state)
        return state

    def positions(self, strategy: str) -> Mapping[str, float]:
        return self.held.get(strategy, {})

    def all_positions(self) -> Mapping[str, float]:
        net: dict[str, float] = {}
        for held in self.held.values():
            for symbol, quantity in held.items():
                net[symbol] = net.get(symbol, 0.0) + quantity
        return net

    def working_orders(self) -> Iterable[OrderState]:
        return self.orders

    def daily_pnl(self, day: date) -> float:
        self.days_asked.append(day)
        return self.pnl.get(day, 0.0)

    def equity(self) -> float:
        return self.equity_value

    def peak_equity(self) -> float:
        return self.peak

    def balance(self) -> float:
        return self.cash


def intent(
    side: Side | str = Side.BUY,
    quantity: float = 0.1,
    symbol: str = BTC,
    *,
    strategy: str = "momentum",
    kind: OrderType = OrderType.MARKET,
    price: float | None = None,
    stop: float | None = None,
    client_order_id: str | None = None,
) -> OrderIntent:
    return OrderIntent(
        client_order_id=client_order_id or f"o{next(_ids)}", strategy=strategy, symbol=symbol, side=Side(side),
        order_type=kind, quantity=quantity, price=price, stop_price=stop,
    )  # fmt: skip


def limit(side: Side | str, quantity: float, price: float, **kwargs: object) -> OrderIntent:
    return intent(side, quantity, kind=OrderType.LIMIT, price=price, **kwargs)  # type: ignore[arg-type]


# Generous limits, so that each test tightens only the rule it is about.
LOOSE = RiskConfig(
    max_order_value=1e12, max_position_size=1e6, max_daily_loss=1e12, max_drawdown=1.0, min_account_balance=0.0,
    max_orders_per_second=10**6, max_orders_per_minute=10**6, price_collar=0.05, max_order_quantity=1e6,
    max_portfolio_notional=1e15, reference_stale_after=5.0,
)  # fmt: skip


@pytest.fixture
def clock() -> ManualClocks:
    return ManualClocks()


@pytest.fixture
def market(clock: ManualClocks) -> FakeMarket:
    market = FakeMarket(clock)
    market.set(BTC, 50_000.0)
    market.set(ETH, 3_000.0)
    market.set(SOL, 100.0)
    return market


@pytest.fixture(params=["list", "store"])
def book(request: pytest.FixtureRequest) -> FakeBook:
    """Each test runs against a book of plain working orders (scanned) and a WorkingOrders store."""
    return FakeBook(store=request.param == "store")


@pytest.fixture
def counters() -> MemoryCounterStore:
    return MemoryCounterStore()


Make = Callable[..., RiskManager]


@pytest.fixture
def make(clock: ManualClocks, market: FakeMarket, book: FakeBook, counters: MemoryCounterStore) -> Make:
    """A RiskManager on the fakes, from LOOSE with the given config overrides."""

    def build(feed: FeedHealth | None = None, **overrides: object) -> RiskManager:
        return RiskManager(replace(LOOSE, **overrides), clock, market, book, counters, feed=feed)  # type: ignore[arg-type]

    return build


def rejected(decision: object, rule: Rule) -> Rejected:
    assert isinstance(decision, Rejected), f"expected {rule.value}, got {decision!r}"
    assert decision.rule is rule, decision.message
    assert decision.message.startswith(f"{rule.value}: ")
    return decision


def verdict(decision: object) -> str:
    return decision.rule.value if isinstance(decision, Rejected) else "approved"


class TestRules:
    def test_labels_are_stable(self) -> None:
        """The rule labels (metric labels) are exactly these, in evaluation order."""
        assert [rule.value for rule in Rule] == [
            "duplicate_client_order_id", "invalid_order", "kill_switch", "symbol_blocked", "symbol_not_allowed",
            "max_quantity", "no_reference_price", "stale_reference_price", "price_collar", "max_order_value",
            "strategy_orders_per_second", "strategy_orders_per_minute", "orders_per_second", "orders_per_minute",
            "max_daily_loss", "max_drawdown", "min_account_balance",
            "max_position_size", "max_portfolio_notional",
        ]  # fmt: skip

    def test_default_config_approves_a_small_order(
        self, clock: ManualClocks, market: FakeMarket, book: FakeBook
    ) -> None:
        """The shipped defaults approve an ordinary order on a fresh account."""
        manager = RiskManager(RiskConfig(), clock, market, book)
        assert manager.check(intent(quantity=0.01)) is APPROVED


class TestOrderRules:
    @pytest.mark.parametrize(
        ("order", "problem"),
        [
            (intent(quantity=0.0), "quantity must be a finite number > 0, got 0.0"),
            (intent(quantity=-1.0), "quantity must be a finite number > 0, got -1.0"),
            (intent(quantity=math.nan), "quantity must be a finite number > 0, got nan"),
            (intent(quantity=math.inf), "quantity must be a finite number > 0, got inf"),
            (intent(kind=OrderType.LIMIT), "price required for a limit order"),
            (intent(price=50_000.0), "price must be None for a market order"),
            (intent(kind=OrderType.STOP), "stop_price required for a stop order"),
            (intent(stop=50_000.0), "stop_price must be None for a market order"),
            (limit("buy", 0.1, math.nan), "prices must be finite numbers > 0, got price=nan stop_price=None"),
            (limit("buy", 0.1, -5.0), "prices must be finite numbers > 0, got price=-5.0 stop_price=None"),
        ],
    )
    def test_invalid_orders_are_refused(self, make: Make, order: OrderIntent, problem: str) -> None:
        """An intent that cannot be evaluated (NaN, missing or stray price) is refused, never waved through."""
        decision = rejected(make().check(order), Rule.INVALID_ORDER)
        assert decision.message == f"invalid_order: {problem} (BTCUSDT buy)"

    def test_blocked_symbol(self, make: Make, market: FakeMarket) -> None:
        """A symbol in blockedSymbols is refused."""
        market.set("DOGEUSDT", 0.1)
        decision = rejected(make(blocked_symbols=("DOGEUSDT",)).check(intent(symbol="DOGEUSDT")), Rule.SYMBOL_BLOCKED)
        assert decision.message == "symbol_blocked: DOGEUSDT is in blockedSymbols"

    @pytest.mark.parametrize(("symbol", "expected"), [(BTC, "approved"), (SOL, "symbol_not_allowed")])
    def test_allowed_symbols(self, make: Make, symbol: str, expected: str) -> None:
        """With allowedSymbols set, only those symbols trade."""
        assert verdict(make(allowed_symbols=(BTC, ETH)).check(intent(symbol=symbol))) == expected

    def test_not_allowed_message(self, make: Make) -> None:
        """The message lists the allowed symbols."""
        decision = rejected(make(allowed_symbols=(ETH, BTC)).check(intent(symbol=SOL)), Rule.SYMBOL_NOT_ALLOWED)
        assert decision.message == "symbol_not_allowed: SOLUSDT is not in allowedSymbols (BTCUSDT, ETHUSDT)"

    @pytest.mark.parametrize(
        ("quantity", "expected"), [(0.999, "approved"), (1.0, "approved"), (1.001, "max_quantity")]
    )
    def test_max_quantity_boundary(self, make: Make, quantity: float, expected: str) -> None:
        """maxOrderQuantity: at the limit passes, above it is refused."""
        assert verdict(make(max_order_quantity=1.0).check(intent(quantity=quantity, symbol=SOL))) == expected

    def test_max_quantity_message(self, make: Make) -> None:
        """The message names the quantity, the limit and the order."""
        decision = rejected(make(max_order_quantity=1.0).check(intent("sell", 1.5)), Rule.MAX_QUANTITY)
        assert decision.message == "max_quantity: 1.5 > limit 1 (BTCUSDT sell 1.5)"


class TestReferencePrice:
    @pytest.mark.parametrize(
        "order", [intent(), limit("buy", 0.1, 50_000.0), intent(kind=OrderType.STOP, stop=50_000.0)]
    )
    def test_missing_reference_fails_closed(self, make: Make, market: FakeMarket, order: OrderIntent) -> None:
        """No reference price: every order type is refused (nothing to value or collar against)."""
        del market.quotes[BTC]
        decision = rejected(make().check(order), Rule.NO_REFERENCE_PRICE)
        assert decision.message == (
            "no_reference_price: none for BTCUSDT, cannot value or collar the order (fail closed)"
        )

    @pytest.mark.parametrize("price", [0.0, -1.0, math.nan, math.inf])
    def test_unusable_reference_fails_closed(self, make: Make, market: FakeMarket, price: float) -> None:
        """A reference that is not a positive finite price counts as none."""
        market.set(BTC, price)
        rejected(make().check(intent()), Rule.NO_REFERENCE_PRICE)

    @pytest.mark.parametrize(
        ("age_s", "expected"),
        [(0.0, "approved"), (4.999, "approved"), (5.0, "approved"), (5.001, "stale_reference_price")],
    )
    def test_stale_boundary(self, make: Make, market: FakeMarket, age_s: float, expected: str) -> None:
        """A reference older than referenceStaleAfter (5 s) is refused; exactly 5 s old still passes."""
        market.set(BTC, 50_000.0, age_s=age_s)
        assert verdict(make().check(intent())) == expected

    def test_stale_message(self, make: Make, market: FakeMarket) -> None:
        """The message names the age and the limit."""
        market.set(BTC, 50_000.0, age_s=7.25)
        decision = rejected(make().check(limit("buy", 0.1, 50_000.0)), Rule.STALE_REFERENCE_PRICE)
        assert decision.message == "stale_reference_price: BTCUSDT reference is 7.250s old > limit 5s (fail closed)"

    def test_a_reference_goes_stale_as_time_passes(self, make: Make, clock: ManualClocks, market: FakeMarket) -> None:
        """Staleness is measured against the wall clock at check time."""
        market.set_at(BTC, 50_000.0, clock.now_ns())
        manager = make()
        assert manager.check(intent()) is APPROVED
        clock.advance(5.5)
        rejected(manager.check(intent()), Rule.STALE_REFERENCE_PRICE)


class TestSilentFeed:
    """A live engine's feed says when a symbol went quiet, on the host's clock (``RiskManager(feed=...)``)."""

    def _feed(self, clock: ManualClocks) -> FeedHealth:
        feed = FeedHealth(stale_after_s=2.0, clock=clock)
        feed.observe(
            Tick(
                symbol=BTC,
                timestamp_ns=clock.now_ns(),
                bid_price=49_999.0,
                bid_size=1.0,
                ask_price=50_001.0,
                ask_size=1.0,
                last_price=None,
                sequence=1,
            )
        )
        return feed

    def test_a_silent_feed_refuses_an_order_whose_reference_looks_fresh(
        self, make: Make, clock: ManualClocks, market: FakeMarket
    ) -> None:
        """The publisher's clock runs an hour ahead, so the timestamp never ages; the arrival time does."""
        market.set_at(BTC, 50_000.0, clock.now_ns() + 3600 * SECOND)
        manager = make(feed=self._feed(clock))
        assert manager.check(intent()) is APPROVED
        clock.advance(1.999)
        assert manager.check(intent()) is APPROVED
        clock.advance(0.001)
        decision = rejected(manager.check(intent()), Rule.STALE_REFERENCE_PRICE)
        assert decision.message == (
            "stale_reference_price: the feed has had nothing for BTCUSDT for >= 2s (fail closed)"
        )

    def test_a_symbol_the_feed_never_carried_is_refused(self, make: Make, clock: ManualClocks) -> None:
        """ETH has a reference (from a replayed book, say) but this feed never delivered it."""
        manager = make(feed=self._feed(clock))
        rejected(manager.check(intent(symbol=ETH)), Rule.STALE_REFERENCE_PRICE)

    def test_without_a_feed_only_the_timestamp_counts(
        self, make: Make, clock: ManualClocks, market: FakeMarket
    ) -> None:
        """A replay has no live feed: the reference's own timestamp decides, as before."""
        market.set_at(BTC, 50_000.0, clock.now_ns())
        manager = make()
        clock.advance(4.0)
        assert manager.check(intent()) is APPROVED


class TestMaxOrderValue:
    @pytest.mark.parametrize(
        ("order", "expected"),
        [
            (intent(quantity=0.2), "approved"),  # 10,000.00 at ref 50,000: at the limit
            (intent(quantity=0.2001), "max_order_value"),  # 10,005.00
            (limit("buy", 0.2, 51_000.0), "max_order_value"),  # valued at its limit price: 10,200
            (limit("buy", 0.204, 49_000.0), "approved"),  # 9,996 at its limit (10,200 at the ref)
            (intent(kind=OrderType.STOP, stop=51_000.0, quantity=0.2), "approved"),  # stop: at the ref, 10,000
            (intent(kind=OrderType.STOP, stop=51_000.0, quantity=0.2001), "max_order_value"),
            (intent(kind=OrderType.STOP_LIMIT, price=49_000.0, stop=50_500.0, quantity=0.204), "approved"),
        ],
    )
    def test_boundary(self, make: Make, order: OrderIntent, expected: str) -> None:
        """maxOrderValue: limit orders at their limit price, market and stop orders at the reference."""
        assert verdict(make(max_order_value=10_000.0).check(order)) == expected

    def test_market_order_message(self, make: Make) -> None:
        """The message names the value, the limit and the order at the reference."""
        decision = rejected(make(max_order_value=10_000.0).check(intent("buy", 0.25)), Rule.MAX_ORDER_VALUE)
        assert decision.message == "max_order_value: 12,500.00 > limit 10,000.00 (BTCUSDT buy 0.25 @ ref 50,000.00)"

    def test_limit_order_message(self, make: Make) -> None:
        """A limit order's message shows its own price."""
        decision = rejected(make(max_order_value=10_000.0).check(limit("sell", 0.2, 51_000.0)), Rule.MAX_ORDER_VALUE)
        assert decision.message == "max_order_value: 10,200.00 > limit 10,000.00 (BTCUSDT sell 0.2 @ 51,000.00)"


class TestPriceCollar:
    @pytest.mark.parametrize(
        ("order", "expected"),
        [
            (limit("buy", 0.1, 52_500.0), "approved"),  # +5 %: on the collar
            (limit("buy", 0.1, 52_500.5), "price_collar"),
            (limit("sell", 0.1, 47_500.0), "approved"),  # -5 %
            (limit("sell", 0.1, 47_499.5), "price_collar"),
            (intent(kind=OrderType.STOP, stop=52_500.0), "approved"),
            (intent(kind=OrderType.STOP, stop=52_501.0), "price_collar"),
            (intent(kind=OrderType.STOP_LIMIT, price=50_000.0, stop=47_000.0), "price_collar"),
        ],
    )
    def test_boundary(self, make: Make, order: OrderIntent, expected: str) -> None:
        """priceCollar (5 %): a limit or stop price on the collar passes, beyond it is refused."""
        assert verdict(make().check(order)) == expected

    def test_limit_message(self, make: Make) -> None:
        """The message names the price, its distance, the reference and the limit."""
        decision = rejected(make().check(limit("buy", 0.1, 53_000.0)), Rule.PRICE_COLLAR)
        assert decision.message == (
            "price_collar: limit price 53,000.00 is 6.00% from ref 50,000.00 > limit 5.00% (BTCUSDT buy 0.1)"
        )

    def test_stop_message(self, make: Make) -> None:
        """A stop price out of the collar is named as such."""
        decision = rejected(make().check(intent("sell", kind=OrderType.STOP, stop=45_000.0)), Rule.PRICE_COLLAR)
        assert decision.message.startswith("price_collar: stop price 45,000.00 is 10.00% from ref 50,000.00")


class TestPositionLimits:
    @pytest.mark.parametrize(
        ("side", "quantity", "expected"),
        [
            ("buy", 0.2, "approved"),  # 0.5 held + 0.3 working buys + 0.2 = 1.0: at the limit
            ("buy", 0.21, "max_position_size"),
            ("sell", 1.0, "approved"),  # 0.5 - 1.0 = -0.5 (working buys do not count for a sell)
            ("sell", 1.51, "max_position_size"),  # 0.5 - 1.51 = -1.01
        ],
    )
    def test_strategy_position_counts_working_orders(
        self, make: Make, book: FakeBook, side: str, quantity: float, expected: str
    ) -> None:
        """Per strategy: position + same-side working orders + this order, against maxPositionSize."""
        book.hold("momentum", BTC, 0.5)
        book.work("momentum", BTC, Side.BUY, 0.3)
        decision = make(max_position_size=1.0).check(intent(side, quantity))
        assert verdict(decision) == expected

    def test_opposite_working_orders_make_no_room(self, make: Make, book: FakeBook) -> None:
        """A working sell may be cancelled: it does not offset a buy."""
        book.hold("momentum", BTC, 0.5)
        book.work("momentum", BTC, Side.SELL, 0.5)
        rejected(make(max_position_size=1.0).check(intent("buy", 0.6)), Rule.MAX_POSITION_SIZE)

    @pytest.mark.parametrize(("quantity", "expected"), [(0.5, "approved"), (0.51, "max_position_size")])
    def test_partly_filled_orders_count_their_remainder(
        self, make: Make, book: FakeBook, quantity: float, expected: str
    ) -> None:
        """A working buy of 0.5 with 0.3 filled adds 0.2 (the 0.3 is in the position already)."""
        book.hold("momentum", BTC, 0.3)
        book.work("momentum", BTC, Side.BUY, 0.5, filled=0.3)
        assert verdict(make(max_position_size=1.0).check(intent("buy", quantity))) == expected

    def test_strategy_message(self, make: Make, book: FakeBook) -> None:
        """The message names the scope, the projected position, the limit and its parts."""
        book.hold("momentum", BTC, 0.5)
        book.work("momentum", BTC, Side.BUY, 0.3)
        decision = rejected(make(max_position_size=1.0).check(intent("buy", 0.25)), Rule.MAX_POSITION_SIZE)
        assert decision.message == (
            "max_position_size: strategy momentum BTCUSDT position would be 1.05 > limit 1 "
            "(position 0.5, working buys 0.3, this buy 0.25)"
        )

    @pytest.mark.parametrize(("quantity", "expected"), [(0.1, "approved"), (0.11, "max_position_size")])
    def test_net_across_strategies(self, make: Make, book: FakeBook, quantity: float, expected: str) -> None:
        """Per symbol, net across strategies: 0.6 + 0.2 held, 0.1 working elsewhere, + this order <= 1."""
        book.hold("momentum", BTC, 0.6)
        book.hold("scalping", BTC, 0.2)
        book.work("mm", BTC, Side.BUY, 0.1)
        decision = make(max_position_size=1.0).check(intent("buy", quantity, strategy="fresh"))
        assert verdict(decision) == expected
        if expected != "approved":
            assert rejected(decision, Rule.MAX_POSITION_SIZE).message == (
                "max_position_size: net across strategies BTCUSDT position would be 1.01 > limit 1 "
                "(position 0.8, working buys 0.1, this buy 0.11)"
            )

    def test_float_noise_at_the_limit_passes(self, make: Make, book: FakeBook) -> None:
        """0.1 + 0.2 working and 0.7 more sums to 1.0000000000000002: that is float noise, not a breach."""
        book.work("momentum", BTC, Side.BUY, 0.1)
        book.work("momentum", BTC, Side.BUY, 0.2)
        assert make(max_position_size=1.0).check(intent("buy", 0.7)) is APPROVED

    @pytest.mark.parametrize(("side", "expected"), [("sell", "approved"), ("buy", "max_position_size")])
    def test_over_the_limit_may_still_shrink(self, make: Make, book: FakeBook, side: str, expected: str) -> None:
        """A position over a (lowered) limit can be reduced, not grown."""
        book.hold("momentum", BTC, 1.5)
        assert verdict(make(max_position_size=1.0).check(intent(side, 0.5))) == expected


class TestPortfolioNotional:
    @pytest.fixture
    def held(self, book: FakeBook) -> FakeBook:
        """BTC 1.0 @ 50,000 and ETH -10 @ 3,000: 80,000 of notional."""
        book.hold("momentum", BTC, 1.0)
        book.hold("scalping", ETH, -10.0)
        return book

    @pytest.mark.parametrize(
        ("order", "expected"),
        [
            (intent("buy", 0.4), "approved"),  # BTC 1.4: 70,000 + 30,000 = 100,000, at the limit
            (intent("buy", 0.41), "max_portfolio_notional"),  # 100,500
            (intent("sell", 6.6, ETH), "approved"),  # ETH -16.6: 50,000 + 49,800
            (intent("sell", 6.67, ETH), "max_portfolio_notional"),  # 100,010
            (intent("buy", 200.0, SOL), "approved"),  # + 20,000 of SOL
            (intent("buy", 201.0, SOL), "max_portfolio_notional"),
            (intent("sell", 1.8), "approved"),  # BTC 1.0 -> -0.8: less exposure
        ],
    )
    def test_boundary(self, make: Make, held: FakeBook, order: OrderIntent, expected: str) -> None:
        """maxPortfolioNotional: sum over symbols of |net position + working| * reference, with this order."""
        assert verdict(make(max_portfolio_notional=100_000.0).check(order)) == expected

    @pytest.mark.parametrize(
        ("order", "expected"), [(intent("sell", 0.5), "approved"), (intent("buy", 0.01), "max_portfolio_notional")]
    )
    def test_over_the_limit_may_still_shrink(
        self, make: Make, held: FakeBook, order: OrderIntent, expected: str
    ) -> None:
        """Over a (lowered) limit, orders that reduce the notional pass and orders that add to it do not."""
        assert verdict(make(max_portfolio_notional=50_000.0).check(order)) == expected

    def test_working_orders_count_as_filled(self, make: Make, held: FakeBook) -> None:
        """A working ETH sell (adding to the short) uses up room: 80,000 + 15,000 + 6,000 > 100,000."""
        held.work("scalping", ETH, Side.SELL, 5.0)
        decision = rejected(
            make(max_portfolio_notional=100_000.0).check(intent("buy", 0.12)), Rule.MAX_PORTFOLIO_NOTIONAL
        )
        assert decision.message == (
            "max_portfolio_notional: 101,000.00 > limit 100,000.00 (positions and working orders at reference, "
            "with BTCUSDT buy 0.12 @ ref 50,000.00)"
        )

    def test_other_symbol_without_reference_fails_closed(self, make: Make, held: FakeBook, market: FakeMarket) -> None:
        """A held symbol with no reference at all cannot be valued: refused, naming it."""
        del market.quotes[ETH]
        decision = rejected(make().check(intent("buy", 0.01)), Rule.NO_REFERENCE_PRICE)
        assert decision.message == (
            "no_reference_price: none for ETHUSDT (exposure 10), cannot value the portfolio (fail closed)"
        )

    def test_other_symbol_with_an_old_reference_is_valued_at_it(
        self, make: Make, held: FakeBook, market: FakeMarket
    ) -> None:
        """Another symbol's stale reference still values its position (only the order's own must be fresh)."""
        market.set(ETH, 3_000.0, age_s=3600.0)
        manager = make(max_portfolio_notional=100_000.0)
        assert manager.check(intent("buy", 0.4)) is APPROVED
        rejected(manager.check(intent("buy", 0.41)), Rule.MAX_PORTFOLIO_NOTIONAL)


class TestAccountRules:
    @pytest.mark.parametrize(
        ("pnl", "expected"), [(0.0, "approved"), (-4_999.99, "approved"), (-5_000.0, "max_daily_loss")]
    )
    def test_daily_loss_boundary(
        self, make: Make, book: FakeBook, clock: ManualClocks, pnl: float, expected: str
    ) -> None:
        """Today's realized P&L <= -maxDailyLoss stops new orders."""
        book.pnl[date(2024, 3, 1)] = pnl
        assert verdict(make(max_daily_loss=5_000.0).check(intent())) == expected

    def test_daily_loss_message_and_day(self, make: Make, book: FakeBook) -> None:
        """The message names the P&L and the limit; the P&L asked for is the clock's UTC day."""
        book.pnl[date(2024, 3, 1)] = -6_000.0
        decision = rejected(make(max_daily_loss=5_000.0).check(intent()), Rule.MAX_DAILY_LOSS)
        assert decision.message == (
            "max_daily_loss: today's realized P&L -6,000.00 <= limit -5,000.00; only reduce-only orders pass "
            "(BTCUSDT buy 0.1)"
        )
        assert book.days_asked[-1] == date(2024, 3, 1)

    @pytest.mark.parametrize(("equity", "expected"), [(80_000.0, "approved"), (79_999.0, "max_drawdown")])
    def test_drawdown_boundary(self, make: Make, book: FakeBook, equity: float, expected: str) -> None:
        """(peak - equity) / peak > maxDrawdown (20 %) stops new orders; exactly 20 % passes."""
        book.equity_value = equity
        assert verdict(make(max_drawdown=0.2).check(intent())) == expected

    def test_drawdown_message(self, make: Make, book: FakeBook) -> None:
        """The message names the drawdown, the limit, the equity and the peak."""
        book.equity_value, book.peak = 75_000.0, 100_000.0
        decision = rejected(make(max_drawdown=0.2).check(intent()), Rule.MAX_DRAWDOWN)
        assert decision.message.startswith(
            "max_drawdown: 25.00% > limit 20.00% (equity 75,000.00, peak 100,000.00); only reduce-only orders pass"
        )

    def test_drawdown_without_a_peak_fails_closed(self, make: Make, book: FakeBook) -> None:
        """A peak equity that is not > 0 makes drawdown unmeasurable: refused."""
        book.peak = 0.0
        rejected(make(max_drawdown=0.2).check(intent()), Rule.MAX_DRAWDOWN)

    @pytest.mark.parametrize(("cash", "expected"), [(1_000.0, "approved"), (999.99, "min_account_balance")])
    def test_min_balance_boundary(self, make: Make, book: FakeBook, cash: float, expected: str) -> None:
        """A balance below minAccountBalance stops new orders; exactly at it passes."""
        book.cash = cash
        assert verdict(make(min_account_balance=1_000.0).check(intent())) == expected

    def test_min_balance_message(self, make: Make, book: FakeBook) -> None:
        """The message names the balance and the limit."""
        book.cash = 500.0
        decision = rejected(make(min_account_balance=1_000.0).check(intent()), Rule.MIN_ACCOUNT_BALANCE)
        assert decision.message.startswith("min_account_balance: balance 500.00 < limit 1,000.00")

    @pytest.mark.parametrize("breach", ["daily_loss", "drawdown", "balance"])
    @pytest.mark.parametrize(
        ("side", "quantity", "expected"), [("sell", 0.5, True), ("sell", 0.6, False), ("buy", 0.1, False)]
    )
    def test_reduce_only_passes_account_limits(
        self, make: Make, book: FakeBook, breach: str, side: str, quantity: float, expected: bool
    ) -> None:
        """Loss limits stop new risk, not exits: an order that only shrinks the strategy's position passes."""
        book.hold("momentum", BTC, 0.5)
        book.pnl[date(2024, 3, 1)] = -6_000.0 if breach == "daily_loss" else 0.0
        book.equity_value = 70_000.0 if breach == "drawdown" else 100_000.0
        book.cash = 10.0 if breach == "balance" else 100_000.0
        manager = make(max_daily_loss=5_000.0, max_drawdown=0.2, min_account_balance=1_000.0)
        assert (manager.check(intent(side, quantity)) is APPROVED) is expected


class TestRateLimits:
    def test_per_second_window_slides(self, make: Make, clock: ManualClocks) -> None:
        """8 per second, approved every 1/8 s: the 9th waits until the first is a full second old."""
        manager = make(max_orders_per_second=8)
        for i in range(8):
            clock.advance(0.125 if i else 0.0)
            assert manager.check(intent()) is APPROVED
        clock.advance(0.0625)  # 0.9375 s after the first
        decision = rejected(manager.check(intent()), Rule.ORDERS_PER_SECOND)
        assert decision.message == (
            "orders_per_second: 9 > limit 8 (orders approved in the last second, all strategies, this one included)"
        )
        clock.advance(0.0625)  # 1.0 s: the first leaves the window
        assert manager.check(intent()) is APPROVED
        rejected(manager.check(intent()), Rule.ORDERS_PER_SECOND)
        clock.advance(0.125)  # the second leaves
        assert manager.check(intent()) is APPROVED

    @pytest.mark.parametrize(("after_s", "expected"), [(59.999, "orders_per_minute"), (60.0, "approved")])
    def test_per_minute_window_boundary(self, make: Make, clock: ManualClocks, after_s: float, expected: str) -> None:
        """An approval leaves the minute window exactly 60 s after it was made."""
        manager = make(max_orders_per_minute=3)
        for _ in range(3):
            assert manager.check(intent()) is APPROVED
            clock.advance(1.0)
        clock.advance(after_s - 3.0)
        assert verdict(manager.check(intent())) == expected

    def test_all_strategies_share_the_window(self, make: Make) -> None:
        """The limits are for all strategies together."""
        manager = make(max_orders_per_second=2)
        assert manager.check(intent(strategy="a")) is APPROVED
        assert manager.check(intent(strategy="b")) is APPROVED
        rejected(manager.check(intent(strategy="c")), Rule.ORDERS_PER_SECOND)

    def test_rejected_orders_do_not_count(self, make: Make) -> None:
        """Only approvals fill the window: refused orders leave it untouched."""
        manager = make(max_orders_per_second=2, blocked_symbols=(SOL,))
        for _ in range(5):
            rejected(manager.check(intent(symbol=SOL)), Rule.SYMBOL_BLOCKED)
        assert [verdict(manager.check(intent())) for _ in range(3)] == ["approved", "approved", "orders_per_second"]

    def test_counted_at_approval_not_at_send(self, make: Make) -> None:
        """Approved orders count at once, before record_sent: a batch checked before sending cannot slip past."""
        manager = make(max_orders_per_second=2)
        batch = [intent() for _ in range(3)]
        assert [verdict(manager.check(order)) for order in batch] == ["approved", "approved", "orders_per_second"]
        assert manager.status().orders_last_second == 2


class TestStrategyQuotas:
    @pytest.fixture
    def quota(
        self, clock: ManualClocks, market: FakeMarket, book: FakeBook, counters: MemoryCounterStore
    ) -> Callable[..., RiskManager]:
        """A RiskManager from LOOSE with overrides, for ``strategies`` configured strategies."""

        def build(strategies: int | Callable[[], int] = 1, **overrides: object) -> RiskManager:
            config = replace(LOOSE, **overrides)  # type: ignore[arg-type]
            count = strategies if callable(strategies) else lambda: strategies
            return RiskManager(config, clock, market, book, counters, strategy_count=count)

        return build

    def test_fair_share_by_default(self, quota: Callable[..., RiskManager]) -> None:
        """Unset, each strategy's quota is the global limit over the configured strategies."""
        manager = quota(3, max_orders_per_second=10, max_orders_per_minute=300)
        assert manager.quotas() == (3, 100)

    def test_hog_is_refused_by_its_own_quota(self, quota: Callable[..., RiskManager], clock: ManualClocks) -> None:
        """The hog is held to the limit minus the others' unused shares; they get theirs in full."""
        manager = quota(3, max_orders_per_second=10)
        verdicts = [verdict(manager.check(intent(strategy="hog"))) for _ in range(5)]
        assert verdicts == ["approved"] * 4 + ["strategy_orders_per_second"]  # 10 - 3 - 3 = 4
        decision = rejected(manager.check(intent(strategy="hog")), Rule.STRATEGY_ORDERS_PER_SECOND)
        assert decision.message == (
            "strategy_orders_per_second: 5 > limit 3 (orders of strategy hog approved in the last second)"
        )
        for sid in ("momentum", "mm"):
            assert [verdict(manager.check(intent(strategy=sid))) for _ in range(3)] == ["approved"] * 3

    def test_a_busy_strategy_borrows_while_the_others_are_quiet(
        self, quota: Callable[..., RiskManager], clock: ManualClocks
    ) -> None:
        """Work-conserving: others quiet for a minute hold nothing back; the busy one may use the whole limit."""
        manager = quota(3, max_orders_per_second=10)
        for sid in ("quiet", "quieter"):
            assert manager.check(intent(strategy=sid)) is APPROVED
        clock.advance(61.0)
        verdicts = [verdict(manager.check(intent(strategy="busy"))) for _ in range(11)]
        assert verdicts == ["approved"] * 10 + ["strategy_orders_per_second"]  # past its share, nothing spare

    def test_per_minute_quota(self, quota: Callable[..., RiskManager], clock: ManualClocks) -> None:
        """The minute quota slides like the global one: an approval leaves it 60 s later."""
        manager = quota(2, max_orders_per_minute=10)
        for _ in range(5):
            assert manager.check(intent(strategy="hog")) is APPROVED
            clock.advance(1.0)
        rejected(manager.check(intent(strategy="hog")), Rule.STRATEGY_ORDERS_PER_MINUTE)
        clock.advance(55.0)  # the first approval is 60 s old
        assert manager.check(intent(strategy="hog")) is APPROVED

    def test_explicit_quota_wins(self, quota: Callable[..., RiskManager]) -> None:
        """A configured quota is used whatever the number of strategies."""
        manager = quota(10, max_orders_per_second=10, max_orders_per_second_per_strategy=4)
        assert [verdict(manager.check(intent())) for _ in range(5)][-1] == "strategy_orders_per_second"

    def test_quota_at_global_limit_is_not_checked(self, quota: Callable[..., RiskManager]) -> None:
        """With one strategy the quota is the global limit, which reports itself."""
        manager = quota(1, max_orders_per_second=2)
        assert [verdict(manager.check(intent())) for _ in range(3)] == ["approved", "approved", "orders_per_second"]

    def test_strategy_count_is_read_live(self, quota: Callable[..., RiskManager]) -> None:
        """A changed strategy list changes the fair share at the next check."""
        count = [1]
        manager = quota(lambda: count[0], max_orders_per_second=10)
        assert manager.quotas()[0] == 10
        count[0] = 4
        assert manager.quotas()[0] == 2

    def test_quota_rejections_do_not_fill_the_windows(self, quota: Callable[..., RiskManager]) -> None:
        """Orders refused by a quota leave every window as it was."""
        manager = quota(5, max_orders_per_second=10, max_orders_per_second_per_strategy=2)
        for _ in range(10):
            manager.check(intent(strategy="hog"))
        assert manager.status().orders_last_second == 2
        assert {Rule.STRATEGY_ORDERS_PER_SECOND, Rule.STRATEGY_ORDERS_PER_MINUTE} == QUOTA_RULES


class TestDuplicateIds:
    def test_second_check_of_an_id_is_refused(self, make: Make) -> None:
        """One decision per client order id: the same intent checked again is refused."""
        manager = make()
        order = intent(client_order_id="abc")
        assert manager.check(order) is APPROVED
        decision = rejected(manager.check(order), Rule.DUPLICATE_CLIENT_ORDER_ID)
        assert decision.message == (
            "duplicate_client_order_id: 'abc' was already checked: one risk decision per client order id"
        )

    def test_a_rejected_id_is_not_checked_again(self, make: Make) -> None:
        """An id refused once stays decided: resubmitting it is a duplicate, not a second chance."""
        manager = make(blocked_symbols=(SOL,))
        rejected(manager.check(intent(symbol=SOL, client_order_id="x")), Rule.SYMBOL_BLOCKED)
        rejected(manager.check(intent(client_order_id="x")), Rule.DUPLICATE_CLIENT_ORDER_ID)

    def test_working_orders_ids_are_known_after_a_restart(self, make: Make, book: FakeBook) -> None:
        """A fresh manager knows the ids of the book's working orders."""
        state = book.work("momentum", BTC, Side.BUY, 0.1)
        rejected(make().check(state.intent), Rule.DUPLICATE_CLIENT_ORDER_ID)

    def test_memory_is_bounded(self, clock: ManualClocks, market: FakeMarket, book: FakeBook) -> None:
        """Only the last remember_ids ids are kept in memory (the ledger journal is the durable guard)."""
        manager = RiskManager(LOOSE, clock, market, book, remember_ids=2)
        for client_order_id in ("a", "b", "c"):
            assert manager.check(intent(client_order_id=client_order_id)) is APPROVED
        rejected(manager.check(intent(client_order_id="c")), Rule.DUPLICATE_CLIENT_ORDER_ID)
        assert manager.check(intent(client_order_id="a")) is APPROVED


class TestKillSwitch:
    @pytest.fixture
    def long_half(self, book: FakeBook) -> FakeBook:
        book.hold("momentum", BTC, 0.5)
        return book

    @pytest.mark.parametrize(
        ("side", "quantity", "working_sells", "expected"),
        [
            ("sell", 0.3, 0.0, "approved"),  # shrinks
            ("sell", 0.5, 0.0, "approved"),  # flattens
            ("sell", 0.51, 0.0, "kill_switch"),  # would flip short
            ("sell", 0.3, 0.2, "approved"),  # with the working sell: 0.5, flat
            ("sell", 0.3, 0.25, "kill_switch"),  # with the working sell: 0.55, flips
            ("buy", 0.1, 0.0, "kill_switch"),  # grows
        ],
    )
    def test_global_switch_allows_reduce_only(
        self, make: Make, long_half: FakeBook, side: str, quantity: float, working_sells: float, expected: str
    ) -> None:
        """Engaged: only orders that (with the strategy's same-side working orders) shrink its position pass."""
        if working_sells:
            long_half.work("momentum", BTC, Side.SELL, working_sells)
        manager = make()
        assert manager.engage() is True
        assert verdict(manager.check(intent(side, quantity))) == expected

    def test_flat_strategy_cannot_trade(self, make: Make) -> None:
        """With no position nothing is reduce-only: every order is refused, with the reason."""
        manager = make()
        manager.engage()
        decision = rejected(manager.check(intent("sell", 0.1)), Rule.KILL_SWITCH)
        assert decision.message == (
            "kill_switch: engaged (global), only reduce-only orders pass, and this one would not only shrink "
            "momentum's position 0 (working sells 0) (BTCUSDT sell 0.1)"
        )

    def test_reduce_only_refused_when_configured(self, make: Make, long_half: FakeBook) -> None:
        """reduceOnlyWhenKilled=false: even reducing orders are refused."""
        manager = make(reduce_only_when_killed=False)
        manager.engage()
        decision = rejected(manager.check(intent("sell", 0.1)), Rule.KILL_SWITCH)
        assert decision.message == (
            "kill_switch: engaged (global), no new orders (reduceOnlyWhenKilled is false) (BTCUSDT sell 0.1)"
        )

    def test_per_strategy_switch(self, make: Make, long_half: FakeBook) -> None:
        """A strategy's own switch stops that strategy only."""
        manager = make()
        assert manager.engage("momentum") is True
        assert manager.engage("momentum") is False
        decision = rejected(manager.check(intent("buy", 0.1)), Rule.KILL_SWITCH)
        assert decision.message.startswith("kill_switch: engaged (strategy momentum), only reduce-only orders pass")
        assert manager.check(intent("sell", 0.1)) is APPROVED
        assert manager.check(intent("buy", 0.1, strategy="scalping")) is APPROVED
        assert manager.is_killed("momentum") and not manager.is_killed("scalping")

    def test_release(self, make: Make) -> None:
        """Releasing the global switch leaves strategies' own switches engaged; each is released on its own."""
        manager = make()
        manager.engage()
        manager.engage("momentum")
        assert manager.release() is True
        assert manager.release() is False
        assert manager.check(intent(strategy="scalping")) is APPROVED
        rejected(manager.check(intent()), Rule.KILL_SWITCH)
        assert manager.release("momentum") is True
        assert manager.check(intent()) is APPROVED

    def test_config_starts_killed(self, make: Make) -> None:
        """killSwitch: true in the config starts the engine engaged."""
        manager = make(kill_switch=True)
        rejected(manager.check(intent()), Rule.KILL_SWITCH)
        assert manager.status().kill_switch is True
        manager.release()
        assert manager.check(intent()) is APPROVED


class TestDailyCounts:
    def test_status_counts_today(self, make: Make) -> None:
        """status() shows today's approvals, sends and rejections by rule."""
        manager = make(blocked_symbols=(SOL,))
        order = intent()
        assert manager.check(order) is APPROVED
        manager.record_sent(order)
        manager.check(intent(symbol=SOL))
        manager.check(intent(symbol=SOL))
        manager.check(order)
        status = manager.status()
        assert (status.day, status.approved, status.sent, status.rejected) == (date(2024, 3, 1), 1, 1, 3)
        assert status.rejections == {"symbol_blocked": 2, "duplicate_client_order_id": 1}

    def test_counters_reset_at_utc_midnight(
        self, make: Make, clock: ManualClocks, counters: MemoryCounterStore
    ) -> None:
        """Crossing midnight UTC starts the day's counts at zero; the previous day's stay in the store."""
        clock.wall_ns = NOON + 12 * 3600 * SECOND - SECOND // 2  # 23:59:59.5
        manager = make()
        assert manager.check(intent()) is APPROVED
        assert manager.status().approved == 1
        clock.advance(0.5)
        status = manager.status()
        assert (status.day, status.approved) == (date(2024, 3, 2), 0)
        assert counters.get("risk.2024-03-01.approved") == 1
        assert manager.check(intent()) is APPROVED
        assert counters.get("risk.2024-03-02.approved") == 1

    def test_daily_loss_follows_the_new_day(self, make: Make, clock: ManualClocks, book: FakeBook) -> None:
        """After midnight the daily-loss rule reads the new day's P&L."""
        book.pnl[date(2024, 3, 1)] = -9_999.0
        manager = make(max_daily_loss=5_000.0)
        rejected(manager.check(intent()), Rule.MAX_DAILY_LOSS)
        clock.advance(12 * 3600)
        assert manager.check(intent()) is APPROVED
        assert book.days_asked[-1] == date(2024, 3, 2)

    def test_counters_survive_a_restart(
        self, clock: ManualClocks, market: FakeMarket, book: FakeBook, counters: MemoryCounterStore
    ) -> None:
        """A new RiskManager on the same CounterStore continues today's counts."""
        first = RiskManager(replace(LOOSE, blocked_symbols=(SOL,)), clock, market, book, counters)
        first.check(intent())
        first.check(intent(symbol=SOL))
        second = RiskManager(replace(LOOSE, blocked_symbols=(SOL,)), clock, market, book, counters)
        second.check(intent())
        status = second.status()
        assert (status.approved, status.rejected, status.rejections) == (2, 1, {"symbol_blocked": 1})

    def test_status_as_dict(self, make: Make) -> None:
        """status().as_dict() is plain data for /status."""
        manager = make()
        manager.engage("mm")
        manager.check(intent())
        assert manager.status().as_dict() == {
            "day": "2024-03-01", "kill_switch": False, "killed_strategies": ["mm"], "reduce_only_when_killed": True,
            "approved": 1, "sent": 0, "rejected": 0, "rejections": {}, "orders_last_second": 1,
            "orders_last_minute": 1, "strategy_quota": {"per_second": 10**6, "per_minute": 10**6},
            "strategy_orders_last_minute": {"momentum": 1},
        }  # fmt: skip


def _state(i: int, rng: random.Random) -> OrderState:
    strategy, symbol = rng.choice(["a", "b"]), rng.choice([BTC, ETH, SOL])
    quantity = rng.choice([0.1, 0.2, 0.3, 1.0 / 3.0])
    side = rng.choice([Side.BUY, Side.SELL])
    return OrderState(OrderIntent(f"r{i}", strategy, symbol, side, OrderType.MARKET, quantity))


class TestWorkingOrders:
    def test_update_follows_an_order_through_its_life(self) -> None:
        """Journaled counts in full, a partial fill counts its remainder, a terminal state removes it."""
        store = WorkingOrders()
        state = OrderState(intent("buy", 0.5))
        store.update(state)
        assert store.exposure("momentum", BTC).sides(BTC) == (0.5, 0.0)
        store.update(state.evolve(status=OrderStatus.PARTIALLY_FILLED, filled_quantity=0.2))
        exposure = store.exposure("momentum", BTC)
        assert exposure.sides(BTC) == pytest.approx((0.3, 0.0))
        assert exposure.own_buys == pytest.approx(0.3)
        store.update(state.evolve(status=OrderStatus.FILLED, filled_quantity=0.5))
        assert (len(store), dict(store.exposure("momentum", BTC).by_symbol)) == (0, {})
        assert state.intent.client_order_id not in store

    def test_sums_return_to_exactly_zero(self) -> None:
        """When a symbol's last order goes its sums are exactly zero, with no float residue."""
        store = WorkingOrders()
        states = [OrderState(intent("buy", q)) for q in (0.1, 0.2, 1.0 / 3.0)]
        for state in states:
            store.update(state)
        for state in states:
            store.update(state.evolve(status=OrderStatus.CANCELLED))
        assert store.exposure("momentum", BTC).sides(BTC) == (0.0, 0.0)

    def test_agrees_with_a_scan(self) -> None:
        """After random journal/fill/cancel updates the running sums equal a fresh scan of the orders."""
        rng = random.Random(7)
        store, live = WorkingOrders(), dict[str, OrderState]()
        for i in range(2000):
            if live and rng.random() < 0.5:
                state = live.pop(rng.choice(sorted(live)))
                filled = min(state.intent.quantity, state.filled_quantity + 0.1)
                status = rng.choice([OrderStatus.PARTIALLY_FILLED, OrderStatus.CANCELLED, OrderStatus.FILLED])
                state = state.evolve(status=status, filled_quantity=filled)
                if status is OrderStatus.PARTIALLY_FILLED and filled < state.intent.quantity:
                    live[state.intent.client_order_id] = state
            else:
                state = _state(i, rng)
                live[state.intent.client_order_id] = state
            store.update(state)
        for strategy in ("a", "b"):
            for symbol in (BTC, ETH, SOL):
                fast, slow = store.exposure(strategy, symbol), scan(list(live.values()), strategy, symbol)
                assert fast.own_buys == pytest.approx(slow.own_buys, abs=1e-9)
                assert fast.own_sells == pytest.approx(slow.own_sells, abs=1e-9)
                assert fast.sides(symbol) == pytest.approx(slow.sides(symbol), abs=1e-9)
        assert sorted(s.intent.client_order_id for s in store) == sorted(live)


class TestReconfigure:
    def test_new_limits_apply_to_the_next_check(self, make: Make) -> None:
        """A lowered maxOrderQuantity from an edited config rejects the next order that is too big."""
        risk = make()
        assert risk.check(intent(quantity=0.5)) is APPROVED
        risk.reconfigure(replace(LOOSE, max_order_quantity=0.1))
        decision = risk.check(intent(quantity=0.5))
        assert isinstance(decision, Rejected) and decision.rule is Rule.MAX_QUANTITY

    def test_rate_windows_keep_their_approvals(self, make: Make) -> None:
        """Approvals already counted still count against a lowered per-second limit."""
        risk = make()
        for _ in range(3):
            assert risk.check(intent()) is APPROVED
        risk.reconfigure(replace(LOOSE, max_orders_per_second=3))
        decision = risk.check(intent())
        assert isinstance(decision, Rejected) and decision.rule is Rule.ORDERS_PER_SECOND

    def test_kill_switch_follows_the_file_only_when_it_changes(self, make: Make) -> None:
        """killSwitch true in the new file engages; an unchanged false leaves an operator's switch engaged."""
        risk = make()
        risk.engage()
        risk.reconfigure(replace(LOOSE, max_order_quantity=5.0))
        assert risk.is_killed("momentum")
        risk.release()
        risk.reconfigure(replace(LOOSE, kill_switch=True))
        assert risk.is_killed("momentum")
        risk.reconfigure(LOOSE)
        assert not risk.is_killed("momentum")
