"""RiskManager: the pre-trade check every order passes, once, between the aggregator and execution.

Model. A pure core, owned by the host and called on its event loop (not thread-safe, no locks):
``check(intent)`` reads the world through the injected seams (``Clocks``, ``MarketView``,
``BookView``, ``CounterStore``) and answers ``APPROVED`` or ``Rejected(rule, message)``. It does no
I/O, logs nothing and schedules nothing; the shell around it logs and counts each rejection under
``rule`` (the same label in the metric and the log). Rules run in ``Rule`` order and the first one
broken is reported. Whatever cannot be evaluated fails closed: a missing or stale reference price,
a NaN anywhere in the arithmetic (every comparison is written so that NaN rejects).

Decisions worth knowing:

- Rate limits count an order when it is approved, in ``check`` itself, not when it is sent: a batch
  checked before any of it is sent cannot slip past the limit, and an approved order whose send then
  fails still counts (a SENT order's fate is unknown until the venue answers). ``record_sent`` only
  adds to today's ``sent`` count. The windows slide on the monotonic clock and start empty after a
  restart (monotonic time does not survive one).
- Each strategy has its own order-rate quota under the global limits (``strategy_orders_per_*``,
  checked before the global ones so the strategy that sends too fast is the one refused, and the
  room it leaves stays for the others). A quota of 0 is the fair share: the global limit divided
  by ``strategy_count()`` (the strategies configured now, read at each check so a changed
  strategy list applies at once), at least 1. The fair share is work-conserving: a strategy past
  it may borrow what the global window has spare beyond the unused share of every other strategy
  that asked for an order in the last minute (and the whole share of those not heard from since
  the start), so a busy market maker is not refused while the others are quiet; one that was quiet
  for over a minute may meet the global limit for at most one second before its share is held.
  A configured quota is a hard cap. A quota at or above the global limit is not checked: the
  global limit says the same and keeps its own label.
  Per-strategy windows are kept for the strategies that have sent orders (a handful; they come
  from the configured ids).
- One decision per client order id: an id seen before is refused (``duplicate_client_order_id``)
  whatever the first answer was. Memory keeps the last ``remember_ids`` ids plus, at start, the ids
  of the book's working orders; the durable guard is the ledger's orders journal, keyed by client
  order id, which refuses a second journal entry for an id (``DuplicateOrder``) after a restart or
  once an id has aged out of memory. The caller journals an approved order before it checks the
  next one, so that order already counts as working. The ids are the host's own (a fresh one per
  decision), so a repeat can only come from the host itself within moments: 10,000 (~1.3 MB) is
  plenty, where 100,000 made the set grow for hours in a long run (~13 MB) before it levelled off.
- Working orders count as if filled on their own side (``host.orders.WorkingOrders``): position and
  portfolio caps use current position + same-side working + this order. An order that moves a
  figure toward flat never breaks its cap (so a position already over a lowered limit can still be
  reduced). When ``BookView.working_orders()`` returns a ``WorkingOrders`` store its running sums
  are read in O(1); any other iterable is scanned on each check (~0.1 us per order).
- Reduce-only means the order, with the strategy's working orders on the same side, can at most
  flatten the strategy's position in that symbol; ``OrderIntent.reduce_only`` is not trusted for
  it. Reduce-only orders pass an engaged kill switch (when ``reduce_only_when_killed``) and the
  three account rules (daily loss, drawdown, balance): those stop new risk, not exits.
- Limits allow one part in 1e9 of float noise (0.1 + 0.2 of a coin at a 0.3 limit passes).
- The order's symbol needs a fresh reference: its market data timestamp within
  ``reference_stale_after`` of ``now_ns()`` and, in a live engine (``feed``), something
  received for it within the feed's ``stale_after`` on the host's clock, which a publisher clock
  running ahead cannot hide. Both break the one rule ``stale_reference_price``. Other symbols in
  the portfolio sum are valued at their latest reference however old (valuing a held position,
  not pricing a new order), and a symbol with exposure but no reference at all fails closed.
- Daily counts (approved, sent, rejected by rule) live in the ``CounterStore`` under the UTC day,
  computed from ``now_ns()`` on each call, so they reset at midnight and survive a restart.
  Kill switches are memory only: ``config.kill_switch`` starts the engine killed, and an operator
  shell that must keep a kill across restarts replays ``engage`` at start.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping

from host.clock import Clocks
from host.config import RiskConfig
from host.orders import Exposure, OrderIntent, exposure_of
from host.risk import _state
from host.risk.decisions import APPROVED, Decision, Rejected, RiskStatus, Rule
from host.risk.seams import BookView, CounterStore, FeedView, MarketView, MemoryCounterStore
from sdk.events import OrderType, Side

__all__ = ["RiskManager"]

_ACTIVE_S = 60.0  # a strategy that asked for an order this recently has its fair share held for it

_SLACK = 1.0 + 1e-9  # float noise allowed over a limit
_INF = math.inf
_BUY = Side.BUY
_LIMIT, _STOP, _STOP_LIMIT = OrderType.LIMIT, OrderType.STOP, OrderType.STOP_LIMIT
_REJECTED_KEYS = {rule: f"rejected.{rule.value}" for rule in Rule}


def _money(value: float) -> str:
    return f"{value:,.2f}"


def _price(value: float) -> str:
    return f"{value:,.2f}" if abs(value) >= 1 else f"{value:.8g}"


def _order(intent: OrderIntent) -> str:
    return f"{intent.symbol} {intent.side.value} {intent.quantity:g}"


def _breaks_cap(before: float, after: float, cap: float) -> bool:
    """Over the cap and further from flat than before (an order that shrinks never breaks it); NaN breaks it."""
    return not (abs(after) <= cap or abs(after) <= abs(before))


def _worst_case(position: float, buys: float, sells: float) -> float:
    """The largest |position| reachable if either side's working orders all fill.

    That is max(|position + buys|, |position - sells|), which for buys, sells >= 0 is the cheaper
    max(position + buys, sells - position); NaN in, NaN out.
    """
    long, short = position + buys, sells - position
    return long if long > short else short


def _unvalued(symbol: str, size: float) -> Rejected:
    message = f"no_reference_price: none for {symbol} (exposure {size:g}), cannot value the portfolio (fail closed)"
    return Rejected(Rule.NO_REFERENCE_PRICE, message)


def _rate(window: _state.RateWindow, rule: Rule, span: str, now: float) -> Rejected | None:
    count = window.count(now)
    if count < window.limit:
        return None
    message = f"{rule.value}: {count + 1} > limit {window.limit} (orders approved in the last {span}"
    return Rejected(rule, f"{message}, all strategies, this one included)")


def _quota(rule: Rule, count: int, limit: int, span: str, strategy: str) -> Rejected:
    message = f"{rule.value}: {count + 1} > limit {limit} (orders of strategy {strategy} approved in the last {span})"
    return Rejected(rule, message)


class RiskManager:
    """Pre-trade risk: ``check`` each order once; operator kill switches; today's counts."""

    def __init__(
        self,
        config: RiskConfig,
        clock: Clocks,
        market: MarketView,
        book: BookView,
        counters: CounterStore | None = None,
        *,
        feed: FeedView | None = None,
        remember_ids: int = 10_000,
        strategy_count: Callable[[], int] = lambda: 1,
    ) -> None:
        self._clock = clock
        self._market = market
        self._book = book
        self._per_second = _state.RateWindow(config.max_orders_per_second, 1.0)
        self._per_minute = _state.RateWindow(config.max_orders_per_minute, 60.0)
        self._strategy_count = strategy_count
        self._quotas: dict[str, tuple[_state.RateWindow, _state.RateWindow]] = {}  # per second, per minute
        self._asked: dict[str, float] = {}  # strategy -> when it last asked for an order (monotonic)
        self._limits(config)
        self._global_kill = config.kill_switch
        self._killed: set[str] = set()
        working_ids = (order.intent.client_order_id for order in book.working_orders())
        self._seen = _state.SeenIds(remember_ids, working_ids)
        self._days = _state.DailyCounts(counters if counters is not None else MemoryCounterStore())
        self._exposure_now: Exposure | None = None  # this check's scan of the working orders
        self._feed = feed  # live only: also refuse a symbol the feed has gone silent on (host clock)

    def _limits(self, config: RiskConfig) -> None:
        self._config = config
        self._blocked = frozenset(config.blocked_symbols)
        self._allowed = frozenset(config.allowed_symbols)
        self._stale_ns = round(config.reference_stale_after * 1e9)
        self._per_second.limit = config.max_orders_per_second
        self._per_minute.limit = config.max_orders_per_minute

    def reconfigure(self, config: RiskConfig) -> None:
        """New limits from a changed config file, for every check from now on.

        The rate windows keep the approvals they hold (a lowered limit counts them), today's
        counts and the operator's per-strategy switches stay; a changed ``killSwitch`` engages or
        releases the global switch as the file now says.
        """
        if config.kill_switch != self._config.kill_switch:
            self._global_kill = config.kill_switch
        self._limits(config)

    # --- operator controls --------------------------------------------------------------------

    def engage(self, strategy: str | None = None) -> bool:
        """Engage the global kill switch, or one strategy's; True if it was not engaged."""
        if strategy is None:
            changed, self._global_kill = not self._global_kill, True
            return changed
        changed = strategy not in self._killed
        self._killed.add(strategy)
        return changed

    def release(self, strategy: str | None = None) -> bool:
        """Release the global switch (strategies' own stay as they are), or one strategy's; True if engaged."""
        if strategy is None:
            changed, self._global_kill = self._global_kill, False
            return changed
        changed = strategy in self._killed
        self._killed.discard(strategy)
        return changed

    def is_killed(self, strategy: str) -> bool:
        """Whether new orders of ``strategy`` are under a kill switch (global or its own)."""
        return self._global_kill or strategy in self._killed

    # --- the check ----------------------------------------------------------------------------

    def check(self, intent: OrderIntent) -> Decision:
        """Approve ``intent`` (and count it toward the rate limits) or say which rule it breaks."""
        now_ns = self._clock.now_ns()
        now = self._clock.monotonic()
        self._exposure_now = None
        rejected = self._evaluate(intent, now_ns, now)
        self._exposure_now = None
        if rejected is not None:
            self._days.add(now_ns, _REJECTED_KEYS[rejected.rule])
            return rejected
        self._per_second.add(now)
        self._per_minute.add(now)
        second, minute = self._quota_windows(intent.strategy)
        second.add(now)
        minute.add(now)
        self._days.add(now_ns, _state.APPROVED_KEY)
        return APPROVED

    def record_sent(self, intent: OrderIntent) -> None:
        """An approved order left the host: today's ``sent`` count (rate limits counted it at approval)."""
        self._days.add(self._clock.now_ns(), _state.SENT_KEY)

    def status(self) -> RiskStatus:
        now_ns, now = self._clock.now_ns(), self._clock.monotonic()
        counts = self._days.counts(now_ns)
        rejections = {
            name.removeprefix("rejected."): value for name, value in counts.items() if name.startswith("rejected.")
        }
        return RiskStatus(
            day=self._days.today(now_ns),
            kill_switch=self._global_kill,
            killed_strategies=tuple(sorted(self._killed)),
            reduce_only_when_killed=self._config.reduce_only_when_killed,
            approved=counts.get(_state.APPROVED_KEY, 0),
            sent=counts.get(_state.SENT_KEY, 0),
            rejected=sum(rejections.values()),
            rejections=rejections,
            orders_last_second=self._per_second.count(now),
            orders_last_minute=self._per_minute.count(now),
            strategy_quota=self.quotas(),
            strategy_orders_last_minute={
                strategy: count for strategy, (_, minute) in self._quotas.items() if (count := minute.count(now))
            },
        )

    def _evaluate(self, intent: OrderIntent, now_ns: int, now: float) -> Rejected | None:
        client_order_id = intent.client_order_id
        if client_order_id in self._seen:
            message = f"{client_order_id!r} was already checked: one risk decision per client order id"
            return Rejected(Rule.DUPLICATE_CLIENT_ORDER_ID, f"duplicate_client_order_id: {message}")
        self._seen.add(client_order_id)
        rejected = self._invalid(intent) or self._kill_switch(intent) or self._symbol_rules(intent)
        if rejected is not None:
            return rejected
        reference = self._reference(intent, now_ns)
        if isinstance(reference, Rejected):
            return reference
        return (
            self._price_rules(intent, reference)
            or self._quota_rules(intent.strategy, now)
            or self._rate_rules(now)
            or self._account_rules(intent, now_ns)
            or self._position_rules(intent)
            or self._portfolio_rule(intent, reference)
        )

    # --- rules, in Rule order ------------------------------------------------------------------

    @staticmethod
    def _invalid(intent: OrderIntent) -> Rejected | None:
        quantity, price, stop, kind = intent.quantity, intent.price, intent.stop_price, intent.order_type
        problem = ""
        if not 0.0 < quantity < _INF:
            problem = f"quantity must be a finite number > 0, got {quantity!r}"
        elif (price is not None) != (kind is _LIMIT or kind is _STOP_LIMIT):
            problem = f"price {'must be None' if price is not None else 'required'} for a {kind.value} order"
        elif (stop is not None) != (kind is _STOP or kind is _STOP_LIMIT):
            problem = f"stop_price {'must be None' if stop is not None else 'required'} for a {kind.value} order"
        elif (price is not None and not 0.0 < price < _INF) or (stop is not None and not 0.0 < stop < _INF):
            problem = f"prices must be finite numbers > 0, got price={price!r} stop_price={stop!r}"
        if not problem:
            return None
        return Rejected(Rule.INVALID_ORDER, f"invalid_order: {problem} ({intent.symbol} {intent.side.value})")

    def _kill_switch(self, intent: OrderIntent) -> Rejected | None:
        strategy = intent.strategy
        if not (self._global_kill or (self._killed and strategy in self._killed)):
            return None
        scope = "global" if self._global_kill else f"strategy {strategy}"
        if not self._config.reduce_only_when_killed:
            detail = "no new orders (reduceOnlyWhenKilled is false)"
        elif self._reduces(intent):
            return None
        else:
            detail = f"only reduce-only orders pass, and this one would not only shrink {self._holding(intent)}"
        return Rejected(Rule.KILL_SWITCH, f"kill_switch: engaged ({scope}), {detail} ({_order(intent)})")

    def _symbol_rules(self, intent: OrderIntent) -> Rejected | None:
        symbol = intent.symbol
        if symbol in self._blocked:
            return Rejected(Rule.SYMBOL_BLOCKED, f"symbol_blocked: {symbol} is in blockedSymbols")
        if self._allowed and symbol not in self._allowed:
            message = f"symbol_not_allowed: {symbol} is not in allowedSymbols ({', '.join(sorted(self._allowed))})"
            return Rejected(Rule.SYMBOL_NOT_ALLOWED, message)
        limit = self._config.max_order_quantity
        if not intent.quantity <= limit * _SLACK:
            message = f"max_quantity: {intent.quantity:g} > limit {limit:g} ({_order(intent)})"
            return Rejected(Rule.MAX_QUANTITY, message)
        return None

    def _reference(self, intent: OrderIntent, now_ns: int) -> float | Rejected:
        quote = self._market.reference(intent.symbol)
        if quote is None:
            message = f"no_reference_price: none for {intent.symbol}, cannot value or collar the order (fail closed)"
            return Rejected(Rule.NO_REFERENCE_PRICE, message)
        price, stamp_ns = quote
        if not 0.0 < price < _INF:
            message = f"no_reference_price: {intent.symbol} reference {price!r} is not a price > 0 (fail closed)"
            return Rejected(Rule.NO_REFERENCE_PRICE, message)
        age_ns = now_ns - stamp_ns
        if age_ns > self._stale_ns:
            limit = self._config.reference_stale_after
            message = f"stale_reference_price: {intent.symbol} reference is {age_ns / 1e9:.3f}s old > limit {limit:g}s"
            return Rejected(Rule.STALE_REFERENCE_PRICE, f"{message} (fail closed)")
        feed = self._feed
        if feed is not None and feed.is_stale(intent.symbol):
            silent = f"the feed has had nothing for {intent.symbol} for >= {feed.stale_after_s:g}s"
            return Rejected(Rule.STALE_REFERENCE_PRICE, f"stale_reference_price: {silent} (fail closed)")
        return price

    def _price_rules(self, intent: OrderIntent, reference: float) -> Rejected | None:
        band = self._config.price_collar * reference * _SLACK
        price, stop = intent.price, intent.stop_price
        if price is not None and not abs(price - reference) <= band:
            return self._collar(intent, "limit", price, reference)
        if stop is not None and not abs(stop - reference) <= band:
            return self._collar(intent, "stop", stop, reference)
        at = price if price is not None else reference
        value = intent.quantity * at
        limit = self._config.max_order_value
        if value <= limit * _SLACK:
            return None
        where = _price(at) if price is not None else f"ref {_price(at)}"
        message = f"max_order_value: {_money(value)} > limit {_money(limit)} ({_order(intent)} @ {where})"
        return Rejected(Rule.MAX_ORDER_VALUE, message)

    def _collar(self, intent: OrderIntent, which: str, price: float, reference: float) -> Rejected:
        deviation, limit = abs(price / reference - 1.0), self._config.price_collar
        message = (
            f"price_collar: {which} price {_price(price)} is {deviation:.2%} from ref {_price(reference)} "
            f"> limit {limit:.2%} ({_order(intent)})"
        )
        return Rejected(Rule.PRICE_COLLAR, message)

    def quotas(self) -> tuple[int, int]:
        """Each strategy's order-rate quota now: (per second, per minute)."""
        config, count = self._config, max(1, self._strategy_count())
        per_second = config.max_orders_per_second_per_strategy or max(1, config.max_orders_per_second // count)
        per_minute = config.max_orders_per_minute_per_strategy or max(1, config.max_orders_per_minute // count)
        return per_second, per_minute

    def _quota_windows(self, strategy: str) -> tuple[_state.RateWindow, _state.RateWindow]:
        windows = self._quotas.get(strategy)
        if windows is None:
            windows = self._quotas[strategy] = (_state.RateWindow(0, 1.0), _state.RateWindow(0, 60.0))
        return windows

    def _quota_rules(self, strategy: str, now: float) -> Rejected | None:
        self._asked[strategy] = now
        second, minute = self._quota_windows(strategy)
        second.limit, minute.limit = self.quotas()
        config = self._config
        checks = (
            (second, self._per_second, 0, config.max_orders_per_second_per_strategy, Rule.STRATEGY_ORDERS_PER_SECOND),
            (minute, self._per_minute, 1, config.max_orders_per_minute_per_strategy, Rule.STRATEGY_ORDERS_PER_MINUTE),
        )  # fmt: skip
        for window, total, which, configured, rule in checks:
            if window.limit >= total.limit:
                continue
            count = window.count(now)
            if count < window.limit or (not configured and self._spare(strategy, which, window.limit, total, now)):
                continue
            return _quota(rule, count, window.limit, "second" if which == 0 else "minute", strategy)
        return None

    def _spare(self, strategy: str, which: int, share: int, total: _state.RateWindow, now: float) -> bool:
        """Whether ``strategy``, over its fair share, may borrow: the global window has room for this
        order, for the unused share of every other strategy active in the last minute, and for the
        whole share of each configured strategy not heard from yet."""
        reserved = sum(
            max(0, share - windows[which].count(now))
            for sid, windows in self._quotas.items()
            if sid != strategy and now - self._asked.get(sid, -_ACTIVE_S) < _ACTIVE_S
        )
        # Configured strategies that have not asked for an order yet have their whole share held.
        unheard = max(0, max(1, self._strategy_count()) - 1 - sum(1 for sid in self._asked if sid != strategy))
        return total.count(now) + 1 + reserved + unheard * share <= total.limit

    def _rate_rules(self, now: float) -> Rejected | None:
        return _rate(self._per_second, Rule.ORDERS_PER_SECOND, "second", now) or _rate(
            self._per_minute, Rule.ORDERS_PER_MINUTE, "minute", now
        )

    def _account_rules(self, intent: OrderIntent, now_ns: int) -> Rejected | None:
        breach = self._account_breach(now_ns)
        if breach is None or self._reduces(intent):
            return None
        return Rejected(breach.rule, f"{breach.message}; only reduce-only orders pass ({_order(intent)})")

    def _account_breach(self, now_ns: int) -> Rejected | None:
        config, book = self._config, self._book
        pnl = book.daily_pnl(self._days.today(now_ns))
        if not pnl > -config.max_daily_loss:
            message = f"max_daily_loss: today's realized P&L {_money(pnl)} <= limit {_money(-config.max_daily_loss)}"
            return Rejected(Rule.MAX_DAILY_LOSS, message)
        equity, peak = book.equity(), book.peak_equity()
        drawdown = (peak - equity) / peak if peak > 0.0 else _INF
        if not drawdown <= config.max_drawdown * _SLACK:
            shown = f"{drawdown:.2%}" if drawdown < _INF else "unmeasurable (peak equity not > 0)"
            message = f"max_drawdown: {shown} > limit {config.max_drawdown:.2%}"
            return Rejected(Rule.MAX_DRAWDOWN, f"{message} (equity {_money(equity)}, peak {_money(peak)})")
        balance = book.balance()
        if not balance >= config.min_account_balance:
            message = f"min_account_balance: balance {_money(balance)} < limit {_money(config.min_account_balance)}"
            return Rejected(Rule.MIN_ACCOUNT_BALANCE, message)
        return None

    def _position_rules(self, intent: OrderIntent) -> Rejected | None:
        exposure = self._exposure(intent)
        symbol, side = intent.symbol, intent.side
        sign = 1.0 if side is _BUY else -1.0
        signed, cap = sign * intent.quantity, self._config.max_position_size * _SLACK
        own, own_working = self._book.positions(intent.strategy).get(symbol, 0.0), exposure.own_same_side(side)
        before = own + sign * own_working
        if _breaks_cap(before, before + signed, cap):
            return self._position_rejected(intent, f"strategy {intent.strategy}", own, own_working)
        net, working = self._book.all_positions().get(symbol, 0.0), exposure.sides(symbol)[side is not _BUY]
        before = net + sign * working
        if _breaks_cap(before, before + signed, cap):
            return self._position_rejected(intent, "net across strategies", net, working)
        return None

    def _position_rejected(self, intent: OrderIntent, scope: str, position: float, working: float) -> Rejected:
        sign = intent.side.sign
        after = position + sign * (working + intent.quantity)
        side = intent.side.value
        message = (
            f"max_position_size: {scope} {intent.symbol} position would be {after:g} > limit "
            f"{self._config.max_position_size:g} (position {position:g}, working {side}s {working:g}, "
            f"this {side} {intent.quantity:g})"
        )
        return Rejected(Rule.MAX_POSITION_SIZE, message)

    def _portfolio_rule(self, intent: OrderIntent, reference: float) -> Rejected | None:
        exposure = self._exposure(intent)
        positions, symbol = self._book.all_positions(), intent.symbol
        others = self._held_elsewhere(symbol, positions, exposure)
        if isinstance(others, Rejected):
            return others
        net = positions.get(symbol, 0.0)
        bought, sold = exposure.sides(symbol)
        before = others + _worst_case(net, bought, sold) * reference
        if intent.side is _BUY:
            bought += intent.quantity
        else:
            sold += intent.quantity
        after = others + _worst_case(net, bought, sold) * reference
        limit = self._config.max_portfolio_notional
        if after <= limit * _SLACK or after <= before:
            return None
        message = (
            f"max_portfolio_notional: {_money(after)} > limit {_money(limit)} (positions and working orders "
            f"at reference, with {_order(intent)} @ ref {_price(reference)})"
        )
        return Rejected(Rule.MAX_PORTFOLIO_NOTIONAL, message)

    def _held_elsewhere(self, symbol: str, positions: Mapping[str, float], exposure: Exposure) -> float | Rejected:
        """Worst-case notional of every symbol but ``symbol``, each at its latest reference however old."""
        reference_of, by_symbol = self._market.reference, exposure.by_symbol
        total = 0.0
        for other, sums in by_symbol.items():  # symbols with working orders (and maybe a position)
            if other != symbol:
                size = _worst_case(positions.get(other, 0.0), sums[0], sums[1])
                quote = reference_of(other)
                if quote is None or not 0.0 < quote[0] < _INF:
                    return _unvalued(other, size)
                total += size * quote[0]
        for other, net in positions.items():  # symbols with only a position
            if net and other != symbol and other not in by_symbol:
                quote = reference_of(other)
                if quote is None or not 0.0 < quote[0] < _INF:
                    return _unvalued(other, abs(net))
                total += abs(net) * quote[0]
        return total

    # --- helpers ---------------------------------------------------------------------------------

    def _exposure(self, intent: OrderIntent) -> Exposure:
        exposure = self._exposure_now
        if exposure is None:
            exposure = self._exposure_now = exposure_of(self._book.working_orders(), intent.strategy, intent.symbol)
        return exposure

    def _reduces(self, intent: OrderIntent) -> bool:
        """The order, with the strategy's working orders on its side, can at most flatten its position."""
        position = self._book.positions(intent.strategy).get(intent.symbol, 0.0)
        toward_flat = position < 0.0 if intent.side is _BUY else position > 0.0
        pending = self._exposure(intent).own_same_side(intent.side)
        return toward_flat and intent.quantity + pending <= abs(position) * _SLACK

    def _holding(self, intent: OrderIntent) -> str:
        position = self._book.positions(intent.strategy).get(intent.symbol, 0.0)
        pending = self._exposure(intent).own_same_side(intent.side)
        return f"{intent.strategy}'s position {position:g} (working {intent.side.value}s {pending:g})"
