"""Order updates reaching a strategy in a real runner, and through ``strategy-engine run``.

``ANSWERED`` is a test plugin that, on its first tick, asks for one order of each kind the engine
answers differently: a limit buy resting 3 % under the bid in slot ``rest`` (accepted; the strategy
cancels it once it hears so), a small market buy (filled) and a buy over ``risk.maxOrderQuantity``
(rejected by risk). It keeps the client order id ``emit`` returned for each, and logs every fill
(``fill_seen``) and every order update (``order_update``, with what the order was for) through
``self.log``, so the engine's JSON log shows, in order, what the strategy heard.

``TestInARunner`` drives one runner process over a real RunnerLink socket with hand-made batches;
``TestThroughTheEngine`` runs the paper venue and the engine as ``strategy-engine`` subprocesses
against a real redis-server and nats-server (``operator_stack``) and reads the engine's log.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from sdk.events import OrderUpdate, OrderUpdateStatus, Side
from tests.helpers import payload, tick_events
from tests.integration.conftest import RunnerHarness
from tests.integration.operator_stack import OperatorStack, poll_until
from tests.servers import NatsServer, RedisServer

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

ANSWERED = '''"""Test plugin: one order of each kind the engine answers differently, and a log of what it heard."""

from __future__ import annotations

from dataclasses import dataclass

from sdk import Fill, OrderUpdate, Signal, Strategy, StrategyConfig, Tick, hookimpl


@dataclass(frozen=True)
class AnsweredConfig(StrategyConfig):
    size: float = 0.001
    too_big: float = 5.0  # over the engine's risk.maxOrderQuantity


class Answered(Strategy[AnsweredConfig]):
    name = "answered"
    Config = AnsweredConfig

    def __init__(self, config: AnsweredConfig) -> None:
        super().__init__(config)
        self.purposes: dict[str, str] = {}  # client order id -> what the order is for
        self.ticks = 0

    def on_tick(self, tick: Tick) -> None:
        self.ticks += 1
        if self.ticks > 1:
            return
        rest = round(tick.bid_price * 0.97, 2)
        symbol, size = tick.symbol, self.config.size
        self.send("rest", Signal(symbol=symbol, side="buy", quantity=size, order_type="limit", price=rest, slot="rest"))
        self.send("market", Signal(symbol=tick.symbol, side="buy", quantity=self.config.size))
        self.send("too_big", Signal(symbol=tick.symbol, side="buy", quantity=self.config.too_big))

    def send(self, purpose: str, signal: Signal) -> None:
        client_order_id = self.emit(signal)
        self.purposes[client_order_id] = purpose
        self.log.info("order_sent", purpose=purpose, client_order_id=client_order_id)

    def on_fill(self, fill: Fill) -> None:
        self.log.info("fill_seen", quantity=fill.quantity)

    def on_order(self, update: OrderUpdate) -> None:
        purpose = self.purposes.get(update.client_order_id, "unknown")
        self.log.info(
            "order_update", purpose=purpose, client_order_id=update.client_order_id, status=update.status.value,
            rule=update.rule, reason=update.reason, slot=update.slot, quantity=update.quantity,
            filled=update.filled_quantity, remaining=update.remaining_quantity,
        )
        if purpose == "rest" and update.status == "accepted":
            self.cancel(update.symbol, "rest")


@hookimpl
def strategy_engine_strategies() -> list[type[Strategy[AnsweredConfig]]]:
    return [Answered]
'''

HEX_ID = re.compile(r"[0-9a-f]{32}")


def write_answered(plugins: Path) -> Path:
    package = plugins / "answered"
    package.mkdir(parents=True, exist_ok=True)
    (package / "__init__.py").write_text(ANSWERED)
    return package


def update(client_order_id: str, status: OrderUpdateStatus) -> OrderUpdate:
    return OrderUpdate(
        client_order_id=client_order_id, strategy="s1", symbol="BTCUSDT", side=Side.BUY, slot="rest", status=status,
        quantity=0.001, remaining_quantity=0.001, timestamp_ns=1_700_000_001_000_000_000,
    )  # fmt: skip


class TestInARunner:
    async def test_emit_names_each_order_and_on_order_hears_them_by_that_name(
        self, runners: RunnerHarness, tmp_path: Path
    ) -> None:
        """The signals leave the runner with the ids emit returned; an update for one of them reaches
        on_order (here: accepted, so the strategy cancels its slot); one for an id it never sent does not match."""
        live = await runners.spawn(write_answered(tmp_path / "plugins"), [{"id": "s1", "name": "answered"}])
        session = await runners.connect(live)
        await session.handshake({}, timeout_s=10)
        first = await session.call(payload(tick_events(1)), 1, deadline_s=5)
        (output,) = first.outputs
        ids = {signal.slot or ("too_big" if signal.quantity > 1 else "market"): signal.client_order_id
               for signal in output.signals}  # fmt: skip
        assert set(ids) == {"rest", "market", "too_big"}
        assert all(HEX_ID.fullmatch(cid) for cid in ids.values()) and len(set(ids.values())) == 3
        stranger = await session.call(payload([update("not-ours", OrderUpdateStatus.ACCEPTED)], "s1"), 1, 5)
        assert (stranger.outputs[0].events, list(stranger.outputs[0].cancels)) == (1, [])
        heard = await session.call(payload([update(ids["rest"], OrderUpdateStatus.ACCEPTED)], "s1"), 1, 5)
        (output,) = heard.outputs
        assert not output.errors
        assert [(c.symbol, c.slot) for c in output.cancels] == [("BTCUSDT", "rest")]


@pytest.fixture
def stack(tmp_path: Path, redis_server: RedisServer, nats_server: NatsServer) -> Iterator[OperatorStack]:
    stack = OperatorStack(tmp_path / "project", redis_server, nats_server)
    write_answered(stack.plugins)
    stack.config["strategies"] = {"answered": {"plugin": "answered", "strategy": "answered", "symbols": ["BTCUSDT"]}}
    try:
        yield stack
    finally:
        stack.stop()


def heard(stack: OperatorStack) -> list[dict[str, Any]]:
    """The strategy's log records, in the order it wrote them: (message, fields)."""
    return [
        {"message": r["message"], **r["fields"]} for r in stack.logs("strategy_log") if r.get("strategy") == "answered"
    ]


def journaled_ids(ledger: Path) -> set[str]:
    db = sqlite3.connect(f"file:{ledger}?mode=ro", uri=True, timeout=5)
    try:
        return {row[0] for row in db.execute("SELECT client_order_id FROM orders")}
    finally:
        db.close()


class TestThroughTheEngine:
    def test_a_strategy_hears_accepted_filled_cancelled_and_a_risk_rejection_by_its_own_ids(
        self, stack: OperatorStack
    ) -> None:
        """Live, against the paper venue over gRPC with fills on NATS: the resting buy is accepted,
        then cancelled (the strategy asked); the market buy is filled, after its fill; the oversized
        buy is rejected by risk under max_quantity with the rule's message; nothing else is told."""
        stack.start(ready=("answered",))

        def all_heard() -> bool:
            ended = {(r["purpose"], r["status"]) for r in heard(stack) if r["message"] == "order_update"}
            return {("rest", "cancelled"), ("market", "filled"), ("too_big", "rejected")} <= ended

        poll_until(all_heard, 30, f"the three orders' endings in the log ({stack.tail()})")
        records = heard(stack)
        sent = {r["purpose"]: r["client_order_id"] for r in records if r["message"] == "order_sent"}
        updates = [r for r in records if r["message"] == "order_update"]
        assert [(u["purpose"], u["status"]) for u in updates if u["purpose"] == "rest"] == [
            ("rest", "accepted"), ("rest", "cancelled"),
        ]  # fmt: skip
        assert [(u["purpose"], u["status"]) for u in updates if u["purpose"] != "rest"] in (
            [("market", "filled"), ("too_big", "rejected")], [("too_big", "rejected"), ("market", "filled")],
        )  # fmt: skip
        assert all(u["client_order_id"] == sent[u["purpose"]] for u in updates)
        by_status = {u["status"]: u for u in updates}
        rest, filled, rejected = by_status["cancelled"], by_status["filled"], by_status["rejected"]
        assert (rest["slot"], rest["reason"], rest["rule"], rest["remaining"]) == (
            "rest", "cancelled by strategy (slot 'rest')", "", 0.0,
        )  # fmt: skip
        assert (filled["filled"], filled["remaining"], filled["rule"]) == (0.001, 0.0, "")
        assert rejected["rule"] == "max_quantity" and rejected["reason"].startswith("max_quantity: ")
        assert (rejected["quantity"], rejected["filled"]) == (5.0, 0.0)
        fill_at = next(i for i, r in enumerate(records) if r["message"] == "fill_seen")
        assert fill_at < records.index(filled), "the fill reaches the strategy before its order's update"
        assert journaled_ids(stack.ledger_path) == {sent["rest"], sent["market"]}, "risk refused the third"
