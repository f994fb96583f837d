"""Search the tower and risk settings, then check the procedure out of sample (walk-forward).

Run it with `.venv/bin/python examples/optimize_tour.py [OUT_DIR]`: a genetic search with two
objectives on two local worker processes, its overfitting diagnostics, then a three-fold
walk-forward whose report is written to OUT_DIR/walkforward/report/report.html.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from reinforcetrade.config import Settings
from reinforcetrade.data import generate_market
from reinforcetrade.optimization import SearchSpace, StrategyOptimizer, WalkForward
from reinforcetrade.reports import ReportGenerator


def main(out_dir: Path) -> None:
    data = generate_market(["BTC/USDT"], bars=6_000, seed=3).frames["BTC/USDT"]
    space = SearchSpace.from_mapping(
        {
            "tower.entry_confidence": {"low": 0.45, "high": 0.8, "step": 0.05},
            "risk.stop_loss": {"low": 0.02, "high": 0.1, "log": True},
        }
    )
    settings = Settings(
        optimization={"min_trades": 5, "storage": f"sqlite:///{out_dir / 'studies.db'}"}
    )

    search = StrategyOptimizer(
        data, space, ["sharpe", "max_drawdown"], method="genetic", settings=settings, n_trials=48
    ).optimize()
    print(f"{len(search.trials)} trials, Pareto front {list(search.pareto)}")
    print(f"chosen {search.best_params}: {search.best_values}")
    d = search.diagnostics
    print(f"deflated Sharpe ratio {d.get('deflated_sharpe_ratio')}, PBO {d.get('pbo')}")

    walk = WalkForward(data, space, ["sharpe"], folds=3, method="tpe", n_trials=16,
                       settings=settings).run()  # fmt: skip
    print(walk.table()[["fold", "is_sharpe_ratio", "oos_sharpe_ratio"]].to_string(index=False))
    print(f"stitched out-of-sample return {walk.stitched.metrics['total_return']:.2%}")
    folder = walk.save(out_dir / "walkforward")
    report = ReportGenerator().generate_full_report(walk.segments(), folder / "report")
    print(f"written to {folder}; report: {report / 'report.html'}")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else Path(tempfile.mkdtemp()))
