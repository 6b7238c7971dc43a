"""Ledger under SIGKILL: a child process writes orders and fills until it is killed at a random moment.

After every kill the parent reopens the file and checks that nothing is torn: the database is
intact, every order's trail starts with its journal entry and ends in the order's current state,
fill ids are unique, each order's filled quantity is the sum of its stored fills, and positions and
daily P&L are exactly the replay of the stored fills through ``sdk._positions.PositionState``.

The child is this module run as a script (``python -m tests.integration.test_ledger_crash DB RUN SEED``).
"""

from __future__ import annotations

import os
import random
import select
import signal
import sqlite3
import subprocess
import sys
from collections import defaultdict
from datetime import date
from itertools import pairwise
from pathlib import Path

import pytest

from host.ledger import DuplicateOrder, Ledger, utc_day
from host.orders import OrderIntent, OrderStatus
from sdk._positions import PositionState
from sdk.events import Fill, OrderType, Side

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]

ROOT = Path(__file__).resolve().parents[2]
RUNS = 8
T0 = 19_724 * 86_400 * 1_000_000_000  # 2024-01-02 00:00:00 UTC
STEP_NS = 3 * 3_600 * 1_000_000_000  # fills 3 h apart, so P&L lands on many UTC days
SYMBOLS = ("BTCUSDT", "ETHUSDT")
STRATEGIES = ("mm", "mom")


# --- the child -------------------------------------------------------------------------------------


def child(path: Path, run: int, seed: int) -> None:
    """Write forever (the parent kills us): orders through their lifecycle, fills, redeliveries, duplicates."""
    rng = random.Random(seed)
    ledger = Ledger.open(path)
    earlier_fills = ledger.fills()
    earlier_orders = [f.order_id.removeprefix("v-") for f in earlier_fills]
    print("ready", flush=True)
    for old in rng.sample(earlier_fills, min(3, len(earlier_fills))):
        assert ledger.record_fill(old, T0) is None, f"fill {old.fill_id} applied twice"
    n = 0
    while True:
        if earlier_orders and rng.random() < 0.05:
            try:
                ledger.journal(_intent(rng.choice(earlier_orders), rng), T0)
                raise AssertionError("a client order id was journaled twice")
            except DuplicateOrder:
                pass
        _one_order(ledger, f"r{run}-o{n}", rng, T0 + (run * 1000 + n) * STEP_NS)
        n += 1


def _intent(coid: str, rng: random.Random) -> OrderIntent:
    return OrderIntent(
        client_order_id=coid, strategy=rng.choice(STRATEGIES), symbol=rng.choice(SYMBOLS), side=rng.choice(list(Side)),
        order_type=OrderType.LIMIT, quantity=float(rng.randint(1, 4)), price=100.0, metadata={"n": coid},
    )  # fmt: skip


def _one_order(ledger: Ledger, coid: str, rng: random.Random, ts: int) -> None:
    intent = ledger.journal(_intent(coid, rng), ts).intent
    ledger.transition(coid, OrderStatus.SENT, ts + 1)
    ledger.transition(coid, OrderStatus.ACCEPTED, ts + 2, venue_order_id=f"v-{coid}")
    left, k = intent.quantity, 0
    while left > 0 and rng.random() < 0.9:
        piece = min(left, float(rng.randint(1, 2)))
        order_id = f"v-{coid}" if k % 2 else coid
        price = round(rng.uniform(90, 110), 2)
        fill = Fill(
            fill_id=f"{coid}-f{k}",
            order_id=order_id,
            symbol=intent.symbol,
            side=intent.side,
            price=price,
            quantity=piece,
            timestamp_ns=ts + 3 + k,
            fee=round(piece * 0.01, 4),
        )
        assert ledger.record_fill(fill, ts + 3 + k) is not None
        if rng.random() < 0.2:
            assert ledger.record_fill(fill, ts + 4 + k) is None, f"fill {fill.fill_id} applied twice"
        left, k = left - piece, k + 1
    if left > 0 and rng.random() < 0.5:
        ledger.transition(coid, OrderStatus.CANCELLED, ts + 10, reason="done")
    ledger.set_value("progress", coid)
    ledger.save_snapshot(intent.strategy, coid.encode(), ts + 11)


# --- the parent ------------------------------------------------------------------------------------


def run_and_kill(path: Path, run: int, rng: random.Random) -> None:
    """Start a child, wait until it has the ledger open, let it write for a random while, SIGKILL it."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.integration.test_ledger_crash", str(path), str(run), str(rng.randrange(2**32))],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True,
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        readable, _, _ = select.select([proc.stdout], [], [], 15)
        assert readable and proc.stdout.readline() == b"ready\n", f"child did not start: {_stderr(proc)}"
        try:
            proc.wait(timeout=rng.uniform(0.1, 0.5))
        except subprocess.TimeoutExpired:
            os.kill(proc.pid, signal.SIGKILL)
        code = proc.wait(timeout=10)
        assert code == -signal.SIGKILL, f"child failed before the kill (exit {code}): {_stderr(proc)}"
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)


def _stderr(proc: subprocess.Popen[bytes]) -> str:
    if proc.poll() is None:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
    assert proc.stderr is not None
    return proc.stderr.read().decode(errors="replace")[-3000:]


def check_not_torn(path: Path) -> int:
    """Every invariant the ledger promises after a crash; returns how many orders are stored."""
    raw = sqlite3.connect(path)
    try:
        assert raw.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        assert raw.execute("SELECT count(*) = count(DISTINCT fill_id) FROM fills").fetchone() == (1,)
        coids = [row[0] for row in raw.execute("SELECT client_order_id FROM orders")]
    finally:
        raw.close()
    with Ledger.open(path) as ledger:
        filled: dict[str, float] = defaultdict(float)
        for fill in ledger.fills():
            filled[fill.order_id.removeprefix("v-")] += fill.quantity
        for coid in coids:
            check_order(ledger, coid, filled[coid])
        check_positions(ledger)
    return len(coids)


def check_order(ledger: Ledger, coid: str, filled: float) -> None:
    order = ledger.order(coid)
    trail = ledger.order_events(coid)
    assert order is not None and trail, f"order {coid} has no trail"
    assert (trail[0].from_status, trail[0].status) == (None, OrderStatus.PENDING_NEW), f"{coid}: first event {trail[0]}"
    last = trail[-1]
    assert (last.status, last.filled_quantity, last.average_price) == (
        order.status, order.filled_quantity, order.average_price,
    ), f"{coid}: order row and last event disagree"  # fmt: skip
    for before, after in pairwise(trail):
        assert after.from_status is before.status, f"{coid}: trail skips from {before.status} to {after}"
    assert order.filled_quantity == filled, (
        f"{coid}: filled quantity {order.filled_quantity} is not its fills' {filled}"
    )


def check_positions(ledger: Ledger) -> None:
    """Positions and daily P&L equal the replay of the stored fills, in stored order, through PositionState."""
    states: dict[tuple[str, str], PositionState] = {}
    daily: dict[tuple[str, str], float] = defaultdict(float)
    for fill in ledger.fills():
        state = states.setdefault((fill.strategy, fill.symbol), PositionState(fill.symbol))
        daily[(fill.strategy, utc_day(fill.timestamp_ns).isoformat())] += state.apply(
            fill.side, fill.quantity, fill.price, fill.fee
        )
    stored = {(p.strategy, p.symbol): (p.quantity, p.avg_entry_price, p.realized_pnl) for p in ledger.positions()}
    replayed = {key: (s.quantity, s.avg_entry_price, s.realized_pnl) for key, s in states.items()}
    assert stored == replayed
    for (strategy, day), realized in daily.items():
        assert ledger.daily_pnl(date.fromisoformat(day), strategy) == pytest.approx(realized, rel=1e-12, abs=1e-9)


class TestLedgerCrash:
    def test_sigkill_at_random_moments_leaves_nothing_torn(self, tmp_path: Path) -> None:
        """Eight writers killed mid-write leave a ledger whose orders, trails, fills and positions all agree."""
        seed = random.randrange(2**32)
        rng = random.Random(seed)
        path = tmp_path / "ledger.db"
        counts = []
        for run in range(RUNS):
            run_and_kill(path, run, rng)
            counts.append(check_not_torn(path))
        assert counts[-1] > counts[0] > 0, f"the writers made no progress: {counts} (seed {seed})"
        with Ledger.open(path) as ledger:
            assert ledger.fills(), f"no fill was ever recorded (seed {seed})"
            assert ledger.get_value("progress") is not None


if __name__ == "__main__":
    child(Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]))
