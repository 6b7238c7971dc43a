"""What a risk check answers: ``Approved`` or ``Rejected(rule, message)``, the rule labels, and the status.

A ``Rule`` value is the stable snake_case label of one rule: it is the ``rule`` label of the
rejection metrics and the first word of every rejection message, so dashboards and logs agree.
Members are listed in the order ``RiskManager.check`` evaluates them; the first rule an order breaks
is the one reported. A message names the rule, the limit and the value that broke it:
``"max_order_value: 12,500.00 > limit 10,000.00 (BTCUSDT buy 0.25 @ ref 50,000.00)"``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from enum import StrEnum
from typing import Any, TypeAlias

__all__ = ["QUOTA_RULES", "Rule", "Approved", "APPROVED", "Rejected", "Decision", "RiskStatus"]


class Rule(StrEnum):
    """Every rule an order can break, by its metric label, in evaluation order."""

    DUPLICATE_CLIENT_ORDER_ID = "duplicate_client_order_id"  # one risk decision per client order id
    INVALID_ORDER = "invalid_order"  # quantity or a price not a finite number > 0, or a price missing
    KILL_SWITCH = "kill_switch"  # global or per strategy; reduce-only may pass (reduceOnlyWhenKilled)
    SYMBOL_BLOCKED = "symbol_blocked"  # in blockedSymbols
    SYMBOL_NOT_ALLOWED = "symbol_not_allowed"  # allowedSymbols is set and does not list it
    MAX_QUANTITY = "max_quantity"  # quantity > maxOrderQuantity
    NO_REFERENCE_PRICE = "no_reference_price"  # no market price to value or collar against: fail closed
    STALE_REFERENCE_PRICE = "stale_reference_price"  # reference older than referenceStaleAfter: fail closed
    PRICE_COLLAR = "price_collar"  # limit or stop price further than priceCollar from the reference
    MAX_ORDER_VALUE = "max_order_value"  # quantity * (limit price, else reference) > maxOrderValue
    STRATEGY_ORDERS_PER_SECOND = "strategy_orders_per_second"  # this strategy's approvals in the last second
    STRATEGY_ORDERS_PER_MINUTE = "strategy_orders_per_minute"  # this strategy's approvals in the last minute
    ORDERS_PER_SECOND = "orders_per_second"  # approvals in the last second, all strategies
    ORDERS_PER_MINUTE = "orders_per_minute"  # approvals in the last minute, all strategies
    MAX_DAILY_LOSS = "max_daily_loss"  # today's realized P&L <= -maxDailyLoss: reduce-only passes
    MAX_DRAWDOWN = "max_drawdown"  # (peak - equity) / peak > maxDrawdown: reduce-only passes
    MIN_ACCOUNT_BALANCE = "min_account_balance"  # balance < minAccountBalance: reduce-only passes
    MAX_POSITION_SIZE = "max_position_size"  # |position + working + order| > maxPositionSize (strategy; net)
    MAX_PORTFOLIO_NOTIONAL = "max_portfolio_notional"  # sum |net + working| * reference > maxPortfolioNotional


# The rules a strategy breaks by itself sending too fast (its own quota, not everyone's limit):
# repeated, they are charged to that strategy's breaker (ORDER_FLOOD).
QUOTA_RULES = frozenset({Rule.STRATEGY_ORDERS_PER_SECOND, Rule.STRATEGY_ORDERS_PER_MINUTE})


@dataclass(frozen=True, slots=True)
class Approved:
    """The order passed every rule and was counted toward the rate limits."""


APPROVED = Approved()


@dataclass(frozen=True, slots=True)
class Rejected:
    """The order broke ``rule``; ``message`` starts with the rule and names the limit and the value."""

    rule: Rule
    message: str


Decision: TypeAlias = Approved | Rejected


@dataclass(frozen=True, slots=True)
class RiskStatus:
    """What /status shows of risk: the kill switches and today's (UTC) counts."""

    day: date
    kill_switch: bool  # the global switch
    killed_strategies: tuple[str, ...]  # strategies with their own switch engaged, sorted
    reduce_only_when_killed: bool
    approved: int  # today's approvals
    sent: int  # today's approved orders reported sent
    rejected: int  # today's rejections, all rules
    rejections: Mapping[str, int]  # today's rejections by rule label (rules with none left out)
    orders_last_second: int  # approvals in the rate windows now
    orders_last_minute: int
    strategy_quota: tuple[int, int] = (0, 0)  # each strategy's order-rate quota now: per second, per minute
    strategy_orders_last_minute: Mapping[str, int] = field(default_factory=dict)  # approvals per strategy, nonzero only

    def as_dict(self) -> dict[str, Any]:
        """Plain data for the JSON of /status."""
        return {
            "day": self.day.isoformat(),
            "kill_switch": self.kill_switch,
            "killed_strategies": list(self.killed_strategies),
            "reduce_only_when_killed": self.reduce_only_when_killed,
            "approved": self.approved,
            "sent": self.sent,
            "rejected": self.rejected,
            "rejections": dict(self.rejections),
            "orders_last_second": self.orders_last_second,
            "orders_last_minute": self.orders_last_minute,
            "strategy_quota": {"per_second": self.strategy_quota[0], "per_minute": self.strategy_quota[1]},
            "strategy_orders_last_minute": dict(self.strategy_orders_last_minute),
        }
