"""Reference runners of peer engines (backtrader, vectorbt, backtesting.py, a numba loop).

`peers.sma` runs one SMA crossover strategy under one convention in every engine, so the engines
agree trade for trade; the parity tests and benchmarks compare our own backtester with them.
"""
