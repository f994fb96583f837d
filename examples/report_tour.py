"""Backtest two symbols, write the HTML report, and show what it holds.

Run it with `.venv/bin/python examples/report_tour.py [OUT_DIR]`; open OUT_DIR/report/report.html
in a browser (it works offline: plotly.js and the data are inside the file).
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

from reinforcetrade.backtesting import EnhancedBacktester, load_result
from reinforcetrade.data import generate_market
from reinforcetrade.reports import ReportGenerator
from reinforcetrade.strategies import MultiAgentStrategy


def main(out_dir: Path) -> None:
    frames = generate_market(["BTC/USDT", "ETH/USDT"], bars=8_760, seed=5).frames
    result = EnhancedBacktester(MultiAgentStrategy(use_rl=False)).run(frames)

    # in-sample and out-of-sample side by side: the report renders the last one in full
    first = {s: f.iloc[:6_000] for s, f in frames.items()}
    later = {s: f.iloc[6_000:] for s, f in frames.items()}
    run = EnhancedBacktester(MultiAgentStrategy(use_rl=False)).run
    split = {"first 6,000 bars": run(first), "last 2,760 bars": run(later)}

    folder = ReportGenerator().generate_full_report(result, out_dir / "report")
    print(f"report: {folder / 'report.html'}")
    ReportGenerator().generate_full_report(split, out_dir / "split-report", title="Two spans")
    print(f"side by side: {out_dir / 'split-report' / 'report.html'}")

    data = json.loads((folder / "report.json").read_text())
    print(f"{data['decision_count']:,} decisions (all in the log), {len(result.trades)} trades")
    for pick in data["key_decisions"][:4]:
        print(f"  key decision {pick['decision']}: {pick['kind']} on {pick['symbol']}")

    # a saved result gives the same report (what `reinforcetrade report DIR` does)
    saved = result.save(out_dir / "result")
    print(f"from the saved result: {ReportGenerator().generate_full_report(load_result(saved))}")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else Path(tempfile.mkdtemp()))
