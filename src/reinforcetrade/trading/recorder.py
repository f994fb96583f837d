"""`BarRecorder`: what one bar of a trading session produced, written to the journal.

The bars seen, every decision the loop wrote (with each agent's vote and the reasons, numbered
on from the run's earlier sessions), the entries the engine withheld and why, the paper
simulator's fills and the orders they settle, positions that changed, round trips as they
close, and equity.
"""

from __future__ import annotations

import numpy as np

from reinforcetrade.backtesting.records import D_ACTION, D_QTY, D_SYMBOL
from reinforcetrade.backtesting.stepper import BarStepper, Step
from reinforcetrade.core.clock import Clock
from reinforcetrade.core.codes import Action
from reinforcetrade.simulation.account import F_SYMBOL, N_TRADE
from reinforcetrade.storage import Journal
from reinforcetrade.storage.backtest import trade_columns
from reinforcetrade.trading.feeds import ClosedBar
from reinforcetrade.trading.orders import OrderManager


class BarRecorder:
    """Writes a session's bars, decisions, withheld entries, fills, positions and equity."""

    def __init__(
        self, journal: Journal, stepper: BarStepper, orders: OrderManager, clock: Clock, base: int
    ) -> None:
        self.journal = journal
        self.stepper = stepper
        self.orders = orders
        self.clock = clock
        self.base = base  # journal number of the stepper's decision 0
        self.written = 0  # stepper decision rows in the journal so far
        self.trades_written = 0  # stepper trade rows in the journal so far
        # journal number of the stepper's trade 0 (a continued live run numbers on)
        self.trade_base = len(journal.read_table("trades", run_id=orders.run_id))
        self.counts = {"decisions": 0, "fills": 0}
        # the last position quantity booked per symbol (a continued run's open rows included)
        self._booked = {p.symbol: p.qty for p in journal.positions(orders.run_id)}

    @property
    def run_id(self) -> int:
        """Return the run written to."""
        return self.orders.run_id

    def decisions(self) -> None:
        """Write the decision rows not yet in the journal."""
        rows = range(self.written, int(self.stepper.run.book.cnt[0]))
        if not len(rows):
            return
        frame = self.stepper.decision_frame(rows)
        for number, record in zip(frame.index, frame.to_dict("records"), strict=True):
            entry = {str(k): v for k, v in record.items()}
            entry["number"] = int(number) + self.base
            self.journal.record_decision(self.run_id, entry)
        self.counts["decisions"] += len(frame)
        self.written = rows.stop

    def bar(
        self,
        step: Step,
        bars: list[ClosedBar],
        held: list[tuple[int, str]],
        closed_ns: int,
        *,
        paper: bool,
    ) -> None:
        """Write everything one bar produced (`paper`: also book the simulator's fills)."""
        journal, run_id = self.journal, self.run_id
        for b in bars:
            journal.record_bar(run_id, symbol=b.symbol, time=b.ts, open=b.open, high=b.high,
                               low=b.low, close=b.close, volume=b.volume)  # fmt: skip
        self.decisions()
        self._withheld(step, held)
        if paper:
            book = self.stepper.run.book
            touched = {self.stepper.symbols[int(book.fill_i[k, F_SYMBOL])] for k in step.fills}
            for symbol in sorted(touched):
                self.counts["fills"] += self.orders.sync_fills(symbol, since_ns=bars[0].ts)
            for row in journal.open_orders(run_id):
                if row.status != "pending":
                    self.orders.book(
                        self.orders.broker.fetch_order(row.symbol, row.client_order_id)
                    )
        self.positions()
        self.trades()
        track = self.stepper.run.track
        journal.record_equity(run_id, time=closed_ns, equity=float(track.equity[step.t]),
                              cash=float(track.cash[step.t]),
                              exposure=float(np.abs(track.exposure[:, step.t]).sum()))  # fmt: skip

    def trades(self) -> None:
        """Write the round trips closed since the last call."""
        rows = range(self.trades_written, int(self.stepper.run.book.cnt[N_TRADE]))
        if not len(rows):
            return
        columns = trade_columns(self.stepper.trade_frame(rows), self.run_id)
        columns.pop("run_id")
        columns["number"] = [k + self.trade_base for k in rows]
        columns["decision_number"] = [int(d) + self.base for d in columns["decision_number"]]
        for values in zip(*columns.values(), strict=True):
            self.journal.record_trade(self.run_id, dict(zip(columns, values, strict=True)))
        self.trades_written = rows.stop

    def _withheld(self, step: Step, held: list[tuple[int, str]]) -> None:
        """Record each withheld entry as an order never sent, with the reason."""
        di, df = self.stepper.decision_rows(step.decisions)
        for k, why in held:
            i = k - step.decisions.start
            self.journal.record_order(
                {
                    "client_order_id": self.orders.client_id(),
                    "run_id": self.run_id,
                    "decision_number": k + self.base,
                    "symbol": self.stepper.symbols[int(di[i, D_SYMBOL])],
                    "side": "buy" if int(di[i, D_ACTION]) == int(Action.ENTER_LONG) else "sell",
                    "type": "market",
                    "qty": float(df[i, D_QTY]),
                    "status": "rejected",
                    "reason": f"withheld by the engine: {why}",
                }
            )

    def positions(self) -> None:
        """Book the positions whose quantity changed (a flat one closes its row)."""
        for symbol in self.stepper.symbols:
            position = self.orders.positions.position(symbol)
            if position.quantity == self._booked.get(symbol, 0.0):
                continue
            self._booked[symbol] = position.quantity
            if position.quantity == 0.0:
                self.journal.upsert_position(self.run_id, symbol, qty=0.0,
                                             realised_pnl=position.realised_pnl,
                                             closed_at=self.clock.now_ns())  # fmt: skip
            else:
                self.journal.upsert_position(self.run_id, symbol, qty=position.quantity,
                                             avg_price=position.average_price,
                                             realised_pnl=position.realised_pnl)  # fmt: skip
