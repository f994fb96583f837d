"""SMA(fast/slow) crossover, long-only, run the same way in four engines (../shared/PEERS.md).

The convention, identical in every runner:

* `sma_crossover_signals` decides at bar t's close. It runs once per run and its arrays are
  handed to each engine, so the engines are compared on execution, not on how four SMA
  implementations round a near-tie;
* an entry (exit) signal while flat (long) fills at the NEXT bar's open, so a signal on the last
  bar is dropped; entries while long and exits while flat are ignored;
* an entry puts all cash in: units = cash / (open × (1 + commission)), fractional; an exit sells
  every unit; each side pays `commission` × traded value;
* final equity marks an open position at the last close (no exit commission).

A trade frame has one row per round trip: entry_time, exit_time (NaT while open), qty,
entry_price, exit_price (NaN while open) and pnl, net of both commissions (an open trade: marked
at the last close, net of the entry commission). Times are the frame's own index labels.

`seconds` covers computing the signals, building and running the engine and reading its results,
not reading the file or reshaping the frame for the engine. The first call in a process also
compiles (numba: ours and vectorbt's, 5-15 s), so benchmarks should warm up first.
"""

from __future__ import annotations

import importlib
import math
import time
import warnings
from dataclasses import dataclass
from typing import Any, Final

import numba
import numpy as np
import numpy.typing as npt
import pandas as pd

__all__ = [
    "PeerResult",
    "gbm_hourly",
    "run_backtesting_py",
    "run_backtrader",
    "run_reference_loop",
    "run_vectorbt",
    "sma_crossover_signals",
]

F8 = npt.NDArray[np.float64]
B1 = npt.NDArray[np.bool_]
I8 = npt.NDArray[np.int64]

COLUMNS: Final = ("open", "high", "low", "close", "volume")
TRADE_COLUMNS: Final = ("entry_time", "exit_time", "qty", "entry_price", "exit_price", "pnl")


@dataclass(frozen=True)
class PeerResult:
    """One engine's run: round trips, final equity, per-bar equity (or None), wall time in s."""

    trades: pd.DataFrame
    final_equity: float
    equity: pd.Series | None
    seconds: float


# --- signals -------------------------------------------------------------------------------

# Window sums carried from bar to bar: (fast sum, bar of its next fresh sum, slow sum, same).
_SmaState = tuple[float, int, float, int]


@numba.njit(cache=True, inline="always")
def _window_sum(x: F8, t: int, w: int, s: float, due: int) -> tuple[float, int]:
    """Return sum(x[t-w+1 : t+1]) and the next bar at which it is summed afresh.

    At bar `due` (w-1, 2w-1, ...) the window is summed from scratch, oldest first; otherwise the
    previous sum `s` slides (+ new, - old). So rounding never builds up beyond one window.
    """
    if t == due:
        s = 0.0
        for k in range(t - w + 1, t + 1):
            s += x[k]
        return s, due + w
    return s + x[t] - x[t - w], due


@numba.njit(cache=True, inline="always")
def _sma_step(close: F8, t: int, fast: int, slow: int, state: _SmaState) -> tuple[_SmaState, int]:
    """Advance `state` to bar t; return it and sign(SMA_fast - SMA_slow) at bar t.

    Start from (0.0, fast - 1, 0.0, slow - 1) at t = 0 and call it for every bar. The sign is 0
    before bar slow - 1 (warm-up) and on exact ties.
    """
    sf, df, ss, ds = state
    if t >= fast - 1:
        sf, df = _window_sum(close, t, fast, sf, df)
    if t < slow - 1:
        return (sf, df, ss, ds), 0
    ss, ds = _window_sum(close, t, slow, ss, ds)
    mf, ms = sf / fast, ss / slow
    return (sf, df, ss, ds), 1 if mf > ms else (-1 if mf < ms else 0)


@numba.njit(cache=True)
def _signals_kernel(close: F8, fast: int, slow: int) -> tuple[B1, B1]:
    """Return (entries, exits): bars where the sign of SMA_fast - SMA_slow turns +1 / -1."""
    n = close.size
    entries = np.zeros(n, dtype=np.bool_)
    exits = np.zeros(n, dtype=np.bool_)
    state = (0.0, fast - 1, 0.0, slow - 1)
    prev = 0
    for t in range(n):
        state, sign = _sma_step(close, t, fast, slow, state)
        if t >= slow:
            entries[t] = sign == 1 and prev != 1
            exits[t] = sign == -1 and prev != -1
        prev = sign
    return entries, exits


def _check_windows(fast: int, slow: int) -> None:
    """Raise ValueError unless 1 <= fast < slow."""
    if not 1 <= fast < slow:
        raise ValueError(f"need 1 <= fast < slow, got fast={fast}, slow={slow}")


def sma_crossover_signals(close: npt.ArrayLike, fast: int = 10, slow: int = 50) -> tuple[B1, B1]:
    """Return boolean (entries, exits) at each bar's close: the fast SMA crosses above / below.

    With d[t] = SMA_fast[t] - SMA_slow[t] (means of the last `fast` / `slow` closes, bar t
    included): entry at t iff d[t] > 0 and not d[t-1] > 0; exit at t iff d[t] < 0 and not
    d[t-1] < 0. A tie (d == 0 exactly) is on neither side, so tie → above is a cross up. Both
    SMAs must exist at t-1: the first possible signal is at bar `slow` (0-based).

    >>> entries, exits = sma_crossover_signals([5.0, 4, 3, 2, 1, 2, 3, 4, 5, 4, 3], 2, 4)
    >>> np.flatnonzero(entries).tolist(), np.flatnonzero(exits).tolist()
    ([6], [10])
    """
    _check_windows(fast, slow)
    x = np.ascontiguousarray(close, dtype=np.float64)
    if x.ndim != 1 or not np.isfinite(x).all():
        raise ValueError("close must be a 1-D array of finite numbers (drop or fill NaN first)")
    entries, exits = _signals_kernel(x, int(fast), int(slow))
    return entries, exits


# --- synthetic data ------------------------------------------------------------------------

_VOLS: Final = (0.2, 0.5, 1.0)  # annualised: calm, normal, wild
_STAY_HOURS: Final = 24 * 30  # mean time in a regime
_HOURS_PER_YEAR: Final = 24 * 365.25


def gbm_hourly(n: int, seed: int = 42) -> pd.DataFrame:
    """Return `n` hourly bars of geometric Brownian motion with three volatility regimes.

    Our stand-in for the PEERS.md series, whose exact numbers are not published: 24/7 bars from
    2000-01-01 00:00 UTC, start price 100; a Markov chain switches between annualised volatility
    20 %, 50 % and 100 % (a geometric stay of mean 30 days, then either other regime); log
    returns are sigma × sqrt(1 h in years) × N(0, 1), driftless in log price so long series
    neither explode nor vanish; open = previous close; high and low are drawn from the exact
    law of a Brownian bridge's maximum and minimum over the bar; volume is lognormal.

    >>> f = gbm_hourly(3)
    >>> f.shape, str(f.index[-1]), float(f["open"].iloc[0])
    ((3, 5), '2000-01-01 02:00:00+00:00', 100.0)
    """
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    rng = np.random.default_rng(seed)
    stays = rng.geometric(1.0 / _STAY_HOURS, size=3 * (n // _STAY_HOURS) + 3)
    while stays.sum() < n:  # 3× the expected number of stays were drawn: practically never
        stays = np.concatenate([stays, rng.geometric(1.0 / _STAY_HOURS, size=stays.size)])
    hops = rng.integers(1, 3, size=stays.size)  # +1 or +2 (mod 3): one of the other two
    hops[0] = rng.integers(0, 3)  # the first regime
    regime = np.repeat(np.cumsum(hops) % 3, stays)[:n]
    s = np.asarray(_VOLS)[regime] / math.sqrt(_HOURS_PER_YEAR)
    r = s * rng.standard_normal(n)
    close = 100.0 * np.exp(np.cumsum(r))
    open_ = np.concatenate([[100.0], close[:-1]])
    # Bridge from 0 to r with std s: P(max > m) = exp(-2 m (m - r) / s²) for m >= max(0, r).
    reach = np.sqrt(r * r + 2.0 * s * s * rng.standard_exponential((2, n)))
    high = np.maximum(open_ * np.exp(0.5 * (r + reach[0])), np.maximum(open_, close))
    low = np.minimum(open_ * np.exp(0.5 * (r - reach[1])), np.minimum(open_, close))
    volume = 1_000.0 * np.exp(0.5 * rng.standard_normal(n))
    index = pd.date_range("2000-01-01", periods=n, freq="h", tz="UTC", name="timestamp")
    data = {"open": open_, "high": high, "low": low, "close": close, "volume": volume}
    return pd.DataFrame(data, index=index)


# --- shared helpers ------------------------------------------------------------------------


def _check_frame(frame: pd.DataFrame, fast: int, slow: int) -> None:
    """Raise ValueError unless `frame` has a UTC DatetimeIndex and float64 OHLCV columns."""
    _check_windows(fast, slow)
    index = frame.index
    if not isinstance(index, pd.DatetimeIndex) or str(index.tz) != "UTC":
        raise ValueError("frame needs a UTC DatetimeIndex (frame.tz_localize('UTC') if naive)")
    bad = [c for c in COLUMNS if c not in frame.columns or frame[c].dtype != np.float64]
    if bad:
        raise ValueError(f"frame needs float64 columns {COLUMNS}; missing or not float64: {bad}")


def _trades_frame(
    index: pd.Index,
    entry_bar: npt.ArrayLike,
    exit_bar: npt.ArrayLike,
    qty: npt.ArrayLike,
    entry_price: npt.ArrayLike,
    exit_price: npt.ArrayLike,
    pnl: npt.ArrayLike,
) -> pd.DataFrame:
    """Build a trade frame from bar positions (exit -1: still open) and per-trade values."""
    entries, exits = np.asarray(entry_bar, np.int64), np.asarray(exit_bar, np.int64)
    closed = exits >= 0
    data = {
        "entry_time": index.take(entries),
        "exit_time": index.take(np.where(closed, exits, 0)).where(closed),
        "qty": np.asarray(qty, np.float64),
        "entry_price": np.asarray(entry_price, np.float64),
        "exit_price": np.where(closed, np.asarray(exit_price, np.float64), np.nan),
        "pnl": np.asarray(pnl, np.float64),
    }
    return pd.DataFrame(data, columns=list(TRADE_COLUMNS))


def _open_pnl(qty: float, entry_price: float, last_close: float, commission: float) -> float:
    """Return an open trade's pnl: marked at the last close, net of the entry commission."""
    return qty * (last_close - entry_price) - qty * entry_price * commission


def _equity(values: npt.ArrayLike, frame: pd.DataFrame) -> pd.Series:
    """Return per-bar equity as a float64 Series on the frame's index."""
    return pd.Series(np.asarray(values, np.float64), index=frame.index, name="equity")


# --- the floor: one fused numba loop -------------------------------------------------------


@numba.njit(cache=True)
def _reference_kernel(
    open_: F8, close: F8, fast: int, slow: int, commission: float, cash: float
) -> tuple[I8, I8, F8, F8, F8, F8, F8]:
    """Signals and fills in one pass; return the trade columns (exit -1: open) and equity."""
    n = close.size
    cap = n // 2 + 1
    entry_bar, exit_bar = np.empty(cap, np.int64), np.full(cap, -1, np.int64)
    qty, entry_px, exit_px, pnl = np.empty(cap), np.empty(cap), np.full(cap, np.nan), np.empty(cap)
    equity = np.empty(n)
    state = (0.0, fast - 1, 0.0, slow - 1)
    units = 0.0
    prev, order, k = 0, 0, 0
    for t in range(n):
        price = open_[t]
        if order == 1:  # all cash in at this open
            units = cash / (price * (1.0 + commission))
            cash = cash - units * price - units * price * commission
            entry_bar[k], qty[k], entry_px[k] = t, units, price
        elif order == -1:  # every unit out at this open
            cash = cash + units * price - units * price * commission
            exit_bar[k], exit_px[k] = t, price
            pnl[k] = units * (price - entry_px[k]) - units * commission * (entry_px[k] + price)
            units, k = 0.0, k + 1
        state, sign = _sma_step(close, t, fast, slow, state)
        order = 0
        if slow <= t < n - 1:  # a signal on the last bar has no next open
            if sign == 1 and prev != 1 and units == 0.0:
                order = 1
            elif sign == -1 and prev != -1 and units > 0.0:
                order = -1
        prev = sign
        equity[t] = cash + units * close[t]
    if units > 0.0:
        pnl[k] = units * (close[n - 1] - entry_px[k]) - units * entry_px[k] * commission
        k += 1
    return entry_bar[:k], exit_bar[:k], qty[:k], entry_px[:k], exit_px[:k], pnl[:k], equity


def run_reference_loop(
    frame: pd.DataFrame,
    fast: int = 10,
    slow: int = 50,
    commission: float = 0.001,
    cash: float = 10_000.0,
) -> PeerResult:
    """Run the strategy as one fused numba loop (SMAs, signals and fills in one pass): the floor.

    It advances the SMAs with the same `_sma_step` as `sma_crossover_signals`, bit for bit.
    """
    _check_frame(frame, fast, slow)
    open_, close = frame["open"].to_numpy(), frame["close"].to_numpy()
    start = time.perf_counter()
    *columns, equity = _reference_kernel(
        open_, close, int(fast), int(slow), float(commission), float(cash)
    )
    trades = _trades_frame(frame.index, *columns)
    final = float(equity[-1]) if equity.size else float(cash)
    seconds = time.perf_counter() - start
    return PeerResult(trades, final, _equity(equity, frame), seconds)


# --- vectorbt ------------------------------------------------------------------------------


def run_vectorbt(
    frame: pd.DataFrame,
    fast: int = 10,
    slow: int = 50,
    commission: float = 0.001,
    cash: float = 10_000.0,
) -> PeerResult:
    """Run `Portfolio.from_signals` with the signals shifted one bar later and price = open.

    vectorbt fills a signal of bar t at price[t], so the signal decided at t-1's close moves to
    t (the last bar's falls off the end); `size` keeps its default, inf: all cash, net of fees.
    Inputs are plain arrays: given a tz-aware DatetimeIndex, vectorbt 1.2 turns the index into
    an object array of Timestamps on every result it wraps, over 20× the simulation time.
    Prices come from its order records (a trade's entry_price is an average, 1 ulp off at times).
    """
    _check_frame(frame, fast, slow)
    import vectorbt as vbt  # type: ignore[import-untyped]  # here: the import alone takes 3 s
    from vectorbt.portfolio.enums import OrderSide, TradeStatus  # type: ignore[import-untyped]

    open_, close = frame["open"].to_numpy(), frame["close"].to_numpy()
    start = time.perf_counter()
    entries, exits = (_one_bar_later(s) for s in sma_crossover_signals(close, fast, slow))
    pf = vbt.Portfolio.from_signals(
        close, entries, exits, price=open_, fees=commission, init_cash=cash, direction="longonly"
    )
    trades, orders = pf.trades.values, pf.orders.values
    buys = orders[orders["side"] == OrderSide.Buy]
    sells = orders[orders["side"] == OrderSide.Sell]
    closed = trades["status"] == TradeStatus.Closed
    if not (np.array_equal(buys["idx"], trades["entry_idx"]) and closed.sum() == sells.size):
        raise RuntimeError("vectorbt's orders do not pair up one to one with its trades")
    exit_bar, exit_price = np.full(trades.size, -1), np.full(trades.size, np.nan)
    exit_bar[closed], exit_price[closed] = sells["idx"], sells["price"]
    # vectorbt's pnl of an open trade is also at the last close, net of the entry fee only.
    table = _trades_frame(
        frame.index, buys["idx"], exit_bar, trades["size"], buys["price"], exit_price, trades["pnl"]
    )
    final, equity = float(pf.final_value()), _equity(pf.value(), frame)
    seconds = time.perf_counter() - start
    return PeerResult(table, final, equity, seconds)


def _one_bar_later(signal: B1) -> B1:
    """Return `signal` shifted one bar later (False at bar 0; the last bar's is dropped)."""
    out = np.zeros_like(signal)
    out[1:] = signal[:-1]
    return out


# --- backtesting.py ------------------------------------------------------------------------

# An order size in (0, 1) is a fraction of the available margin: the largest float below 1
# puts all cash in (less 1.1e-16), where the default 0.9999 would leave 1e-4 of it.
_ALL_IN: Final = float(np.nextafter(1.0, 0.0))
# Units of the first position under FractionalBacktest (see run_backtesting_py).
_UNITS_LOG2: Final = 48


def run_backtesting_py(
    frame: pd.DataFrame,
    fast: int = 10,
    slow: int = 50,
    commission: float = 0.001,
    cash: float = 10_000.0,
) -> PeerResult:
    """Run backtesting.py's `FractionalBacktest`: a market order in `next()` fills at next open.

    It trades whole multiples of `fractional_unit`, here a power of two (scaling prices by it is
    exact, so prices come back bit for bit) that makes the first position about 2**48 units:
    sizes stay within 1e-10 of exact until positions shrink 2**15-fold and below int64 until
    they grow as much. `finalize_trades` stays False (closing at the end would charge an exit
    commission), so an open trade is read from the strategy and its notice silenced.
    """
    _check_frame(frame, fast, slow)
    # By name: the test folder tests/backtesting/ shadows this package for mypy and ruff.
    strategy_base: Any = importlib.import_module("backtesting").Strategy
    fractional_backtest = importlib.import_module("backtesting.lib").FractionalBacktest

    class Cross(strategy_base):  # type: ignore[misc]
        signals: tuple[B1, B1] = (np.zeros(0, np.bool_), np.zeros(0, np.bool_))

        def init(self) -> None:
            entries, exits = self.signals
            self.entry = self.I(lambda: entries, name="entry", overlay=False, plot=False)
            self.exit = self.I(lambda: exits, name="exit", overlay=False, plot=False)

        def next(self) -> None:
            if not self.position:
                if self.entry[-1]:
                    self.buy(size=_ALL_IN)
            elif self.exit[-1]:
                self.position.close()

    data = frame.rename(columns=str.capitalize)
    unit = 2.0 ** (round(math.log2(cash / frame["open"].iloc[0])) - _UNITS_LOG2)
    start = time.perf_counter()
    signals = sma_crossover_signals(frame["close"].to_numpy(), fast, slow)
    backtest = fractional_backtest(
        data, Cross, cash=cash, commission=commission, fractional_unit=unit
    )
    with warnings.catch_warnings():
        # Expected: the open trade is read below.
        warnings.filterwarnings("ignore", "Some trades remain open", UserWarning)
        # backtesting 0.6.6's compute_stats calls DatetimeIndex.dayofweek, deprecated in pandas 3.
        warnings.filterwarnings("ignore", "DatetimeIndex.dayofweek", pd.errors.Pandas4Warning)
        stats = backtest.run(signals=signals)
    trades = _backtesting_trades(frame, stats, unit, commission)
    final = float(stats["Equity Final [$]"])
    equity = _equity(stats["_equity_curve"]["Equity"], frame)
    seconds = time.perf_counter() - start
    return PeerResult(trades, final, equity, seconds)


def _backtesting_trades(
    frame: pd.DataFrame, stats: pd.Series, unit: float, commission: float
) -> pd.DataFrame:
    """Join backtesting.py's closed trades (rescaled already) and open ones (in scaled units)."""
    done, still = stats["_trades"], stats["_strategy"].trades
    qty = [t.size * unit for t in still]
    price = [t.entry_price / unit for t in still]
    last = float(frame["close"].iloc[-1])
    return _trades_frame(
        frame.index,
        [*done["EntryBar"], *(t.entry_bar for t in still)],
        [*done["ExitBar"], *([-1] * len(still))],
        [*done["Size"], *qty],
        [*done["EntryPrice"], *price],
        [*done["ExitPrice"], *([np.nan] * len(still))],
        [
            *done["PnL"],
            *(_open_pnl(q, p, last, commission) for q, p in zip(qty, price, strict=True)),
        ],
    )


# --- backtrader ----------------------------------------------------------------------------


def _all_in_size(cash: float, price: float, commission: float) -> float:
    """Return cash / (price × (1 + commission)), lowered by ulps until backtrader accepts it.

    backtrader cancels an opening fill (status Margin) when its own arithmetic,
    (cash - size × price) - size × commission × price, leaves less than 0; for the exact
    all-in size rounding alone makes that about -1e-16 × cash nine times out of ten.

    >>> size = _all_in_size(10_000.0, 123.45, 0.001)
    >>> (10_000.0 - size * 123.45) - size * 0.001 * 123.45 >= 0.0
    True
    """
    size = cash / (price * (1.0 + commission))
    while (cash - size * price) - size * commission * price < 0.0:
        size = float(np.nextafter(size, 0.0))
    return size


def run_backtrader(
    frame: pd.DataFrame,
    fast: int = 10,
    slow: int = 50,
    commission: float = 0.001,
    cash: float = 10_000.0,
) -> PeerResult:
    """Run backtrader with cheat_on_open=True and the broker's submit-time cash check off.

    `next()` decides at bar t's close; `next_open()` at bar t+1, whose open is known by then,
    sizes the order, which fills at that open (the last bar's signal never meets a next_open).
    Fills come from `notify_order`, a refused order raises; per-bar equity from `next()`.
    `seconds` includes cerebro preloading the feed, part of its run. The feed is
    PandasDirectData (itertuples), as PandasData's per-cell `.iloc` would double the time.
    """
    _check_frame(frame, fast, slow)
    import backtrader as bt  # type: ignore[import-untyped]

    class Cross(bt.Strategy):  # type: ignore[misc]
        params = (("signals", None), ("commission", 0.0))

        def __init__(self) -> None:
            self.intent = 0
            self.fills: list[tuple[Any, float, float]] = []  # (naive UTC time, size, price)
            self.pnls: list[float] = []
            self.values: list[float] = []

        def next(self) -> None:
            entries, exits = self.p.signals
            t = len(self.data) - 1
            if not self.position:
                self.intent = 1 if entries[t] else 0
            else:
                self.intent = -1 if exits[t] else 0
            self.values.append(self.broker.getvalue())

        def next_open(self) -> None:
            if self.intent == 1:
                price = self.data.open[0]
                self.buy(size=_all_in_size(self.broker.getcash(), price, self.p.commission))
            elif self.intent == -1:
                self.close()

        def notify_order(self, order: Any) -> None:
            if order.status == order.Completed:
                # executed.price is an average over fills, 1 ulp off at times: take the fill's.
                bit = order.executed.exbits[-1]
                self.fills.append((bt.num2date(bit.dt), bit.size, bit.price))
            elif order.status not in (order.Submitted, order.Accepted):
                raise RuntimeError(f"backtrader refused an order: {order.getstatusname()}")

        def notify_trade(self, trade: Any) -> None:
            if trade.isclosed:
                self.pnls.append(trade.pnlcomm)

    feed = bt.feeds.PandasDirectData(dataname=frame, openinterest=-1)
    start = time.perf_counter()
    signals = sma_crossover_signals(frame["close"].to_numpy(), fast, slow)
    cerebro = bt.Cerebro(stdstats=False, cheat_on_open=True)
    cerebro.adddata(feed)
    cerebro.broker.setcash(cash)
    cerebro.broker.set_checksubmit(False)
    cerebro.broker.setcommission(commission=commission)
    cerebro.addstrategy(Cross, signals=signals, commission=commission)
    strategy = cerebro.run()[0]
    trades = _backtrader_trades(frame, strategy.fills, strategy.pnls, commission)
    final, equity = float(cerebro.broker.getvalue()), _equity(strategy.values, frame)
    seconds = time.perf_counter() - start
    return PeerResult(trades, final, equity, seconds)


def _backtrader_trades(
    frame: pd.DataFrame, fills: list[tuple[Any, float, float]], pnls: list[float], commission: float
) -> pd.DataFrame:
    """Pair backtrader's fills (buy, sell, buy, ...) into round trips on the frame's bars."""
    when = pd.DatetimeIndex([f[0] for f in fills], tz="UTC")
    bars = frame.index.get_indexer(when)
    buys, sells = fills[0::2], fills[1::2]
    if (bars < 0).any() or any(b[1] <= 0 for b in buys) or any(s[1] >= 0 for s in sells):
        raise RuntimeError("backtrader's fills are not buy, sell, buy, ... on the frame's bars")
    qty = np.array([b[1] for b in buys], dtype=np.float64)
    entry_price = np.array([b[2] for b in buys], dtype=np.float64)
    still_open = len(buys) - len(sells)
    pnl = list(pnls)
    if still_open:
        pnl.append(_open_pnl(qty[-1], entry_price[-1], float(frame["close"].iloc[-1]), commission))
    return _trades_frame(
        frame.index,
        bars[0::2],
        [*bars[1::2], *([-1] * still_open)],
        qty,
        entry_price,
        [*(s[2] for s in sells), *([np.nan] * still_open)],
        pnl,
    )
