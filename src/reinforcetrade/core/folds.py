"""Walk-forward folds: in-sample spans to fit or tune on, each followed by an out-of-sample span.

The out-of-sample spans tile the end of the data, so their equity curves stitch into one
out-of-sample history. `train` is the in-sample share of a fold's window: with K folds over n
bars, a window is n / (train + K·(1 − train)) bars, its in-sample part `train` of that, and each
out-of-sample span (n − in-sample) / K bars. Rolling folds slide the in-sample span along;
anchored folds keep it starting at the first bar, so it grows.

Between the two, `purge` bars are cut from the end of the in-sample span (whatever the
optimisation saw — indicator windows, trades still open at its end — stays clear of the
out-of-sample span) and `embargo` bars at the start of the out-of-sample span are not scored
(they only warm the agents up). Every fold's out-of-sample span starts after its in-sample span
ends: no fold ever tests on a bar it was tuned on.
"""

from __future__ import annotations

from dataclasses import dataclass

from reinforcetrade.core.errors import UserInputError

MIN_BARS = 2


@dataclass(frozen=True)
class Fold:
    """One fold: the in-sample and out-of-sample spans as [start, stop) bar positions."""

    number: int
    train: tuple[int, int]
    test: tuple[int, int]

    @property
    def train_bars(self) -> int:
        """Return the in-sample span's length."""
        return self.train[1] - self.train[0]

    @property
    def test_bars(self) -> int:
        """Return the out-of-sample span's length."""
        return self.test[1] - self.test[0]


def walk_forward_folds(
    n_bars: int,
    folds: int,
    train: float = 0.7,
    *,
    anchored: bool = False,
    purge: int = 0,
    embargo: int = 0,
) -> list[Fold]:
    """Return the walk-forward folds over `n_bars` bars (see the module docstring).

    >>> [(f.train, f.test) for f in walk_forward_folds(1000, 3, 0.7)]
    [((0, 437), (437, 624)), ((187, 624), (624, 811)), ((374, 811), (811, 1000))]
    >>> [(f.train, f.test) for f in walk_forward_folds(1000, 3, 0.7, anchored=True, purge=10)]
    [((0, 427), (437, 624)), ((0, 614), (624, 811)), ((0, 801), (811, 1000))]
    """
    if folds < 1:
        raise UserInputError(f"folds must be at least 1, got {folds}")
    if not 0 < train < 1:
        raise UserInputError(f"train must be a fraction between 0 and 1, got {train}")
    if purge < 0 or embargo < 0:
        raise UserInputError(f"purge and embargo must be 0 or more, got {purge} and {embargo}")
    window = n_bars / (train + folds * (1 - train))
    in_sample = int(train * window)
    step = (n_bars - in_sample) // folds
    out = []
    for k in range(folds):
        boundary = in_sample + k * step
        stop = n_bars if k == folds - 1 else boundary + step
        first = 0 if anchored else boundary - in_sample
        fold = Fold(k + 1, (first, boundary - purge), (boundary + embargo, stop))
        if fold.train_bars < MIN_BARS or fold.test_bars < MIN_BARS:
            raise UserInputError(
                f"{folds} folds of {n_bars:,} bars with train={train}, purge={purge}, "
                f"embargo={embargo} leave fold {k + 1} {max(fold.train_bars, 0)} in-sample and "
                f"{max(fold.test_bars, 0)} out-of-sample bars; use fewer folds or more data"
            )
        out.append(fold)
    return out
