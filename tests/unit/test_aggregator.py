"""Aggregator modes on conflicting batches, same-strategy netting, slot pass-through, outcomes; SignalQueue."""

from __future__ import annotations

import random

import pytest

from host.config import AGGREGATION_MODES
from host.risk import AggregationResult, Aggregator, OutcomeKind, SignalQueue
from sdk.events import OrderType, Side, Signal

BTC, ETH = "BTCUSDT", "ETHUSDT"


def sig(
    side: str = "buy",
    quantity: float = 1.0,
    symbol: str = BTC,
    *,
    priority: int = 5,
    confidence: float = 1.0,
    slot: str = "",
    price: float | None = None,
) -> Signal:
    kind = OrderType.MARKET if price is None else OrderType.LIMIT
    return Signal(
        symbol=symbol,
        side=Side(side),
        quantity=quantity,
        order_type=kind,
        price=price,
        priority=priority,
        confidence=confidence,
        slot=slot,
    )


def kinds(result: AggregationResult) -> list[str]:
    return [outcome.kind.value for outcome in result.outcomes]


def sent(result: AggregationResult) -> list[tuple[str, str, float]]:
    return [(strategy, signal.side.value, round(signal.quantity, 9)) for strategy, signal in result.orders]


def check_outcomes(batch: list[tuple[str, Signal]], result: AggregationResult) -> None:
    """One outcome per input, in order; every sent order is led by exactly one executed/reduced input."""
    assert [o.index for o in result.outcomes] == list(range(len(batch)))
    assert [(o.strategy, o.symbol) for o in result.outcomes] == [(s, g.symbol) for s, g in batch]
    leads = [o for o in result.outcomes if o.kind in (OutcomeKind.EXECUTED, OutcomeKind.REDUCED)]
    assert sorted(o.order for o in leads if o.order is not None) == list(range(len(result.orders)))
    for outcome in result.outcomes:
        carried = outcome.kind in (OutcomeKind.EXECUTED, OutcomeKind.REDUCED, OutcomeKind.MERGED)
        assert (outcome.order is not None) is carried
        if outcome.kind in (OutcomeKind.EXECUTED, OutcomeKind.REDUCED):
            assert outcome.order is not None and result.orders[outcome.order][0] == outcome.strategy


class TestConstruction:
    def test_unknown_mode(self) -> None:
        """A mode outside the config's choices is refused, naming them."""
        with pytest.raises(ValueError, match="must be one of priority, majority, weighted, unanimous, got 'vote'"):
            Aggregator("vote")

    @pytest.mark.parametrize("weight", [-1.0, float("nan"), float("inf")])
    def test_bad_weight(self, weight: float) -> None:
        """Weights must be finite and >= 0."""
        with pytest.raises(ValueError, match="aggregation weight of a"):
            Aggregator("weighted", {"a": weight})


class TestPriority:
    def test_highest_priority_first_stable_within_equal(self) -> None:
        """Orders come out by priority (10 first); equal priorities keep arrival order."""
        batch = [("a", sig(priority=3)), ("b", sig(symbol=ETH, priority=9)), ("c", sig(priority=3)),
                 ("d", sig(symbol=ETH, priority=5))]  # fmt: skip
        result = Aggregator("priority").aggregate(batch)
        assert [strategy for strategy, _ in result.orders] == ["b", "d", "a", "c"]
        assert kinds(result) == ["executed"] * 4
        assert [o.order for o in result.outcomes] == [2, 0, 3, 1]
        check_outcomes(batch, result)

    def test_different_strategies_are_not_netted(self) -> None:
        """A buy and a sell of one symbol from two strategies both go: each strategy owns its position."""
        batch = [("a", sig("buy", 1.0)), ("b", sig("sell", 0.4))]
        result = Aggregator("priority").aggregate(batch)
        assert sent(result) == [("a", "buy", 1.0), ("b", "sell", 0.4)]
        assert kinds(result) == ["executed", "executed"]

    @pytest.mark.parametrize(
        ("signals", "expected_sent", "expected_kinds"),
        [
            ([sig("buy", 1.0), sig("sell", 0.4)], [("a", "buy", 0.6)], ["reduced", "netted"]),
            ([sig("sell", 0.4), sig("buy", 1.0)], [("a", "buy", 0.6)], ["netted", "reduced"]),
            ([sig("buy", 0.5), sig("sell", 0.5)], [], ["netted", "netted"]),
            ([sig("buy", 0.1), sig("buy", 0.2), sig("sell", 0.3)], [], ["netted", "netted", "netted"]),
            # the lowest priority buy is cut first, then the next: the most urgent survives whole
            ([sig("buy", 0.3, priority=8), sig("buy", 0.5, priority=3), sig("sell", 0.6)],
             [("a", "buy", 0.2)], ["reduced", "netted", "netted"]),
            # equal priorities: the latest is cut first
            ([sig("sell", 0.5), sig("sell", 0.5), sig("buy", 0.7)],
             [("a", "sell", 0.3)], ["reduced", "netted", "netted"]),
        ],
    )  # fmt: skip
    def test_same_strategy_nets_to_the_difference(
        self, signals: list[Signal], expected_sent: list[tuple[str, str, float]], expected_kinds: list[str]
    ) -> None:
        """One strategy's opposite signals on one symbol net to the difference, cut from its least urgent."""
        batch = [("a", signal) for signal in signals]
        result = Aggregator("priority").aggregate(batch)
        assert (sent(result), kinds(result)) == (expected_sent, expected_kinds)
        check_outcomes(batch, result)

    def test_netting_keeps_the_signal_otherwise(self) -> None:
        """A reduced signal keeps its type, price and priority; only the quantity changes."""
        batch = [("a", sig("buy", 1.0, price=50_000.0, priority=7)), ("a", sig("sell", 0.25))]
        (_, signal), = Aggregator("priority").aggregate(batch).orders  # fmt: skip
        assert (signal.order_type, signal.price, signal.priority, signal.quantity) == (
            OrderType.LIMIT, 50_000.0, 7, 0.75
        )  # fmt: skip

    def test_netting_is_per_symbol(self) -> None:
        """A strategy's buy of one symbol and sell of another do not net."""
        batch = [("a", sig("buy", 1.0)), ("a", sig("sell", 1.0, ETH))]
        assert kinds(Aggregator("priority").aggregate(batch)) == ["executed", "executed"]


class TestMajority:
    def test_more_strategies_win_and_the_lead_goes_unchanged(self) -> None:
        """2 buy vs 1 sell: the buy side's highest-priority signal goes as it is, the other buy merges."""
        batch = [("a", sig("buy", 1.0, priority=4)), ("b", sig("sell", 2.0, priority=9)),
                 ("c", sig("buy", 3.0, priority=6))]  # fmt: skip
        result = Aggregator("majority").aggregate(batch)
        assert sent(result) == [("c", "buy", 3.0)]
        assert kinds(result) == ["merged", "outvoted", "executed"]
        assert result.outcomes[0].order == 0 and result.outcomes[1].order is None
        assert result.outcomes[1].detail == "outvoted: 2 strategies buy vs 1 sell on BTCUSDT"
        check_outcomes(batch, result)

    def test_tie_sends_nothing(self) -> None:
        """1 buy vs 1 sell: no order, both recorded as no_consensus."""
        batch = [("a", sig("buy")), ("b", sig("sell"))]
        result = Aggregator("majority").aggregate(batch)
        assert (sent(result), kinds(result)) == ([], ["no_consensus", "no_consensus"])
        assert result.outcomes[0].detail == "tie: 1 strategy buy vs 1 sell on BTCUSDT"

    def test_one_vote_per_strategy(self) -> None:
        """Three buys from one strategy are one vote: two sellers win 2-1."""
        batch = [("a", sig("buy")), ("a", sig("buy")), ("a", sig("buy")), ("b", sig("sell", 0.5)),
                 ("c", sig("sell", 0.7))]  # fmt: skip
        result = Aggregator("majority").aggregate(batch)
        assert sent(result) == [("b", "sell", 0.5)]
        assert kinds(result) == ["outvoted"] * 3 + ["executed", "merged"]

    def test_a_strategy_netted_to_nothing_abstains(self) -> None:
        """A strategy whose own signals cancel out casts no vote: the other strategy wins 1-0."""
        batch = [("a", sig("buy", 1.0)), ("a", sig("sell", 1.0)), ("b", sig("sell", 0.5))]
        result = Aggregator("majority").aggregate(batch)
        assert (sent(result), kinds(result)) == ([("b", "sell", 0.5)], ["netted", "netted", "executed"])

    def test_lead_tie_goes_to_the_earliest(self) -> None:
        """Among equal priorities on the winning side, the earliest signal leads."""
        batch = [("b", sig("buy", 2.0)), ("a", sig("buy", 1.0))]
        assert sent(Aggregator("majority").aggregate(batch)) == [("b", "buy", 2.0)]

    def test_symbols_vote_apart(self) -> None:
        """Each symbol has its own vote."""
        batch = [("a", sig("buy")), ("b", sig("sell", symbol=ETH)), ("c", sig("sell"))]
        result = Aggregator("majority").aggregate(batch)
        assert sent(result) == [("b", "sell", 1.0)]
        assert kinds(result) == ["no_consensus", "executed", "no_consensus"]


class TestWeighted:
    def test_score_picks_the_side_and_quantity_is_the_weighted_mean(self) -> None:
        """score = sum w*c*sign; the lead goes with the mean of the winners' quantities weighted by w*c."""
        aggregator = Aggregator("weighted", {"a": 2.0, "b": 1.0, "c": 1.0})
        batch = [("a", sig("buy", 1.0, confidence=0.5)),  # +1.0
                 ("b", sig("sell", 5.0, confidence=0.8, priority=9)),  # -0.8
                 ("c", sig("buy", 3.0, confidence=1.0, priority=7))]  # +1.0  # fmt: skip
        result = aggregator.aggregate(batch)
        assert sent(result) == [("c", "buy", 2.0)]  # (1.0*1 + 1.0*3) / 2
        assert kinds(result) == ["merged", "outvoted", "executed"]
        assert result.outcomes[2].detail == "weighted score +1.2; quantity 2 = weighted mean of the winning side"
        check_outcomes(batch, result)

    @pytest.mark.parametrize(("threshold", "expected"), [(0.2, "buy"), (0.21, None), (0.0, "buy")])
    def test_threshold_boundary(self, threshold: float, expected: str | None) -> None:
        """|score| below the threshold sends nothing; at the threshold it goes."""
        aggregator = Aggregator("weighted", {"a": 1.0, "b": 1.0}, threshold=threshold)
        result = aggregator.aggregate([("a", sig("buy", confidence=0.75)), ("b", sig("sell", confidence=0.55))])
        assert [signal.side.value for _, signal in result.orders] == ([expected] if expected else [])
        if expected is None:
            assert kinds(result) == ["no_consensus", "no_consensus"]

    def test_zero_score_sends_nothing(self) -> None:
        """A perfectly balanced vote is no consensus, even with no threshold."""
        result = Aggregator("weighted", {"a": 2.0}).aggregate([("a", sig("buy", confidence=0.5)), ("b", sig("sell"))])
        assert (sent(result), kinds(result)) == ([], ["no_consensus", "no_consensus"])

    def test_unknown_strategies_weigh_the_default(self) -> None:
        """A strategy missing from the weights gets default_weight."""
        aggregator = Aggregator("weighted", {"a": 1.0}, default_weight=3.0)
        result = aggregator.aggregate([("a", sig("buy")), ("x", sig("sell", confidence=0.5))])
        assert sent(result) == [("x", "sell", 1.0)]

    def test_lead_keeps_its_own_quantity_when_alone(self) -> None:
        """A single winner goes with its own quantity (the mean of one)."""
        result = Aggregator("weighted").aggregate([("a", sig("buy", 0.3)), ("b", sig("sell", 0.9, confidence=0.2))])
        assert sent(result) == [("a", "buy", 0.3)]
        assert result.orders[0][1] == sig("buy", 0.3)


class TestUnanimous:
    def test_all_agree(self) -> None:
        """Every strategy on the symbol on one side: the lead goes, the others merge."""
        batch = [("a", sig("sell", 1.0)), ("b", sig("sell", 2.0, priority=8))]
        result = Aggregator("unanimous").aggregate(batch)
        assert (sent(result), kinds(result)) == ([("b", "sell", 2.0)], ["merged", "executed"])

    def test_one_dissenter_stops_it(self) -> None:
        """Any disagreement sends nothing for that symbol."""
        batch = [("a", sig("buy")), ("b", sig("buy")), ("c", sig("sell")), ("d", sig("buy", symbol=ETH))]
        result = Aggregator("unanimous").aggregate(batch)
        assert sent(result) == [("d", "buy", 1.0)]
        assert kinds(result) == ["no_consensus"] * 3 + ["executed"]
        assert result.outcomes[0].detail == "strategies disagree on BTCUSDT: 2 buy vs 1 sell"


class TestSlots:
    @pytest.mark.parametrize("mode", AGGREGATION_MODES)
    def test_quotes_pass_through_in_every_mode(self, mode: str) -> None:
        """A market maker's bid and ask are neither netted, voted on nor merged, whatever the mode."""
        batch = [("mm", sig("buy", 0.1, price=49_990.0, slot="bid")),
                 ("mm", sig("sell", 0.1, price=50_010.0, slot="ask")),
                 ("a", sig("sell", 1.0)), ("b", sig("sell", 1.0))]  # fmt: skip
        result = Aggregator(mode).aggregate(batch)
        assert kinds(result)[:2] == ["executed", "executed"]
        assert [(s, g.slot) for s, g in result.orders if g.slot] == [("mm", "bid"), ("mm", "ask")]
        assert all(signal == batch[i][1] for i, (_, signal) in enumerate(result.orders[:2]))
        check_outcomes(batch, result)

    @pytest.mark.parametrize("mode", AGGREGATION_MODES)
    def test_quotes_do_not_vote(self, mode: str) -> None:
        """A quote does not count against a directional signal on the same symbol."""
        batch = [("mm", sig("sell", 0.1, price=50_010.0, slot="ask")), ("a", sig("buy", 1.0))]
        result = Aggregator(mode).aggregate(batch)
        assert sorted(sent(result)) == [("a", "buy", 1.0), ("mm", "sell", 0.1)]

    def test_a_later_quote_in_the_same_slot_supersedes(self) -> None:
        """Within a batch only the last signal per (strategy, symbol, slot) goes; earlier ones are superseded."""
        batch = [("mm", sig("buy", 0.1, price=49_990.0, slot="bid", priority=9)),
                 ("mm", sig("buy", 0.2, price=49_980.0, slot="bid", priority=2)),
                 ("other", sig("buy", 0.3, price=49_970.0, slot="bid"))]  # fmt: skip
        result = Aggregator("priority").aggregate(batch)
        assert kinds(result) == ["superseded", "executed", "executed"]
        assert sent(result) == [("other", "buy", 0.3), ("mm", "buy", 0.2)]
        assert result.outcomes[0].detail == "replaced by input 1 in slot 'bid'"


class TestOutcomes:
    @pytest.mark.parametrize("mode", AGGREGATION_MODES)
    @pytest.mark.parametrize("seed", range(5))
    def test_every_input_has_one_outcome(self, mode: str, seed: int) -> None:
        """Random mixed batches: one outcome per input, in input order, orders led by their own strategy."""
        rng = random.Random(seed)
        batch = [
            (rng.choice("abcd"), sig(rng.choice(["buy", "sell"]), rng.choice([0.1, 0.2, 0.5]), rng.choice([BTC, ETH]),
                                     priority=rng.randint(1, 10), confidence=rng.random(),
                                     slot=rng.choice(["", "", "", "bid"])))
            for _ in range(40)
        ]  # fmt: skip
        result = Aggregator(mode, {"a": 2.0, "b": 0.5}).aggregate(batch)
        check_outcomes(batch, result)
        priorities = [signal.priority for _, signal in result.orders]
        assert priorities == sorted(priorities, reverse=True)

    def test_empty_batch(self) -> None:
        """Nothing in, nothing out."""
        assert Aggregator("majority").aggregate([]) == AggregationResult((), ())


class TestSignalQueue:
    def test_full_queue_drops_the_new_signal_and_counts_it(self) -> None:
        """At capacity, put refuses the new signal and counts it by (strategy, symbol)."""
        queue = SignalQueue(2)
        assert queue.put("a", sig()) and queue.put("b", sig(symbol=ETH))
        assert queue.put("a", sig()) is False
        assert queue.put("a", sig()) is False
        assert queue.put("c", sig(symbol=ETH)) is False
        assert dict(queue.dropped) == {("a", BTC): 2, ("c", ETH): 1}
        assert (len(queue), queue.dropped_total) == (2, 3)
        assert [strategy for strategy, _ in queue.take_batch(10)] == ["a", "b"]

    def test_take_batch_is_fifo_and_bounded(self) -> None:
        """take_batch returns at most max_items of the oldest, in arrival order, and frees the room."""
        queue = SignalQueue(3)
        for strategy in "abc":
            queue.put(strategy, sig())
        assert [s for s, _ in queue.take_batch(2)] == ["a", "b"]
        assert len(queue) == 1
        assert queue.put("d", sig()) and queue.put("e", sig())
        assert [s for s, _ in queue.take_batch(10)] == ["c", "d", "e"]
        assert (queue.take_batch(10), len(queue)) == ([], 0)

    def test_dropped_is_read_only(self) -> None:
        """The dropped counts are a view the caller cannot change."""
        queue = SignalQueue(1)
        with pytest.raises(TypeError):
            queue.dropped[("a", BTC)] = 5  # type: ignore[index]

    @pytest.mark.parametrize("capacity", [0, -1])
    def test_capacity_must_be_positive(self, capacity: int) -> None:
        """A queue with no room is a config error."""
        with pytest.raises(ValueError, match="signal queue capacity: must be >= 1"):
            SignalQueue(capacity)
