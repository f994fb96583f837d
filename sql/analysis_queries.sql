-- Analysis queries on a PostgreSQL journal; run one with
-- reinforcetrade.storage.analysis.run_query(journal, "<name>", run_id=…).
-- Each query follows a "-- name:" line and a one-line description; binds are :run_id (and :at).
-- "Closed trades" have an exit and a P&L; a trade's entry decision is trades.decision_number.
-- The SQLite twin is analysis_queries.sqlite.sql (same names, same columns).

-- name: agent_hit_rate
-- Per agent: closed trades whose entry decision it voted on, hits (signal sign = return sign).
WITH judged AS (
    SELECT a.agent, a.signal, t.ret
    FROM trades t
    JOIN decisions d ON d.run_id = t.run_id AND d.number = t.decision_number
    JOIN decision_agents a ON a.decision_id = d.id
    WHERE t.run_id = :run_id AND t.ret IS NOT NULL
)
SELECT agent,
       count(*) FILTER (WHERE signal <> 0) AS trades,
       count(*) FILTER (WHERE signal * ret > 0) AS hits,
       CAST(count(*) FILTER (WHERE signal * ret > 0) AS double precision)
           / NULLIF(count(*) FILTER (WHERE signal <> 0), 0) AS hit_rate
FROM judged
GROUP BY agent
ORDER BY agent;

-- name: agent_pnl_attribution
-- Per agent: closed trades' P&L split by the agent's share of the entry decision's weight.
WITH shares AS (
    SELECT a.agent, t.pnl, a.weight / NULLIF(sum(a.weight) OVER (PARTITION BY d.id), 0) AS share
    FROM trades t
    JOIN decisions d ON d.run_id = t.run_id AND d.number = t.decision_number
    JOIN decision_agents a ON a.decision_id = d.id
    WHERE t.run_id = :run_id AND t.pnl IS NOT NULL AND t.exit_time IS NOT NULL
)
SELECT agent, sum(pnl * share) AS attributed_pnl, avg(share) AS mean_share
FROM shares
GROUP BY agent
ORDER BY agent;

-- name: pnl_by_regime
-- Closed trades by the market regime of their entry decision ('unknown' without one).
SELECT COALESCE(d.regime, 'unknown') AS regime,
       count(*) AS trades,
       count(*) FILTER (WHERE t.pnl > 0) AS wins,
       sum(t.pnl) AS pnl,
       avg(t.ret) AS mean_return
FROM trades t
LEFT JOIN decisions d ON d.run_id = t.run_id AND d.number = t.decision_number
WHERE t.run_id = :run_id AND t.exit_time IS NOT NULL AND t.pnl IS NOT NULL
GROUP BY 1
ORDER BY 1;

-- name: pnl_by_hour
-- Closed trades by the UTC hour of their exit.
SELECT CAST(EXTRACT(HOUR FROM t.exit_time AT TIME ZONE 'UTC') AS integer) AS hour,
       count(*) AS trades,
       sum(t.pnl) AS pnl
FROM trades t
WHERE t.run_id = :run_id AND t.exit_time IS NOT NULL AND t.pnl IS NOT NULL
GROUP BY 1
ORDER BY 1;

-- name: slippage_stats
-- Fills by symbol and side: count, mean and worst slippage in bps, total slippage money.
SELECT f.symbol, f.side,
       count(*) AS fills,
       avg(f.slippage_bps) AS mean_bps,
       max(f.slippage_bps) AS max_bps,
       sum(f.slippage) AS total_slippage
FROM fills f
WHERE f.run_id = :run_id
GROUP BY f.symbol, f.side
ORDER BY f.symbol, f.side;

-- name: confidence_calibration
-- Closed trades by decile of the entry decision's tower confidence (floor(10c), 1.0 in 9).
SELECT LEAST(CAST(floor(d.confidence * 10) AS integer), 9) AS decile,
       count(*) AS trades,
       count(*) FILTER (WHERE t.pnl > 0) AS wins,
       CAST(count(*) FILTER (WHERE t.pnl > 0) AS double precision) / count(*) AS win_rate,
       avg(d.confidence) AS mean_confidence
FROM trades t
JOIN decisions d ON d.run_id = t.run_id AND d.number = t.decision_number
WHERE t.run_id = :run_id AND t.exit_time IS NOT NULL AND t.pnl IS NOT NULL
  AND d.confidence IS NOT NULL
GROUP BY 1
ORDER BY 1;

-- name: losing_streaks
-- Runs of consecutive losing closed trades (by exit time): first trade, length, total P&L.
WITH ordered AS (
    SELECT t.number, t.pnl, t.exit_time,
           row_number() OVER (ORDER BY t.exit_time, t.number)
           - row_number() OVER (PARTITION BY sign(t.pnl) ORDER BY t.exit_time, t.number) AS grp
    FROM trades t
    WHERE t.run_id = :run_id AND t.exit_time IS NOT NULL AND t.pnl IS NOT NULL
)
SELECT min(number) AS first_trade, count(*) AS length, sum(pnl) AS pnl
FROM ordered
WHERE pnl < 0
GROUP BY grp
ORDER BY min(exit_time), min(number);

-- name: winning_streaks
-- Runs of consecutive winning closed trades (by exit time): first trade, length, total P&L.
WITH ordered AS (
    SELECT t.number, t.pnl, t.exit_time,
           row_number() OVER (ORDER BY t.exit_time, t.number)
           - row_number() OVER (PARTITION BY sign(t.pnl) ORDER BY t.exit_time, t.number) AS grp
    FROM trades t
    WHERE t.run_id = :run_id AND t.exit_time IS NOT NULL AND t.pnl IS NOT NULL
)
SELECT min(number) AS first_trade, count(*) AS length, sum(pnl) AS pnl
FROM ordered
WHERE pnl > 0
GROUP BY grp
ORDER BY min(exit_time), min(number);

-- name: blocked_entries_by_reason
-- Blocked decisions per reason code (a decision counts once for each of its '|' codes).
SELECT code, count(*) AS decisions
FROM decisions d, unnest(string_to_array(d.reason_codes, '|')) AS code
WHERE d.run_id = :run_id AND d.action = 'blocked' AND code <> ''
GROUP BY code
ORDER BY code;

-- name: exposure_by_symbol
-- Per symbol from fills: buys, sells, net quantity, traded notional, last price, net value.
WITH last_fill AS (
    SELECT DISTINCT ON (f.symbol) f.symbol, f.price
    FROM fills f WHERE f.run_id = :run_id
    ORDER BY f.symbol, f.time DESC, f.id DESC
)
SELECT f.symbol,
       count(*) FILTER (WHERE f.side = 'buy') AS buys,
       count(*) FILTER (WHERE f.side = 'sell') AS sells,
       sum(CASE WHEN f.side = 'buy' THEN f.qty ELSE -f.qty END) AS net_qty,
       sum(f.qty * f.price) AS traded_notional,
       l.price AS last_price,
       sum(CASE WHEN f.side = 'buy' THEN f.qty ELSE -f.qty END) * l.price AS net_value
FROM fills f
JOIN last_fill l ON l.symbol = f.symbol
WHERE f.run_id = :run_id
GROUP BY f.symbol, l.price
ORDER BY f.symbol;

-- name: trade_duration_stats
-- Closed trades by side: count and mean, shortest and longest holding time in hours.
SELECT t.side,
       count(*) AS trades,
       avg(EXTRACT(EPOCH FROM t.exit_time - t.entry_time)) / 3600 AS mean_hours,
       min(EXTRACT(EPOCH FROM t.exit_time - t.entry_time)) / 3600 AS min_hours,
       max(EXTRACT(EPOCH FROM t.exit_time - t.entry_time)) / 3600 AS max_hours
FROM trades t
WHERE t.run_id = :run_id AND t.exit_time IS NOT NULL
GROUP BY t.side
ORDER BY t.side;

-- name: daily_returns
-- Per UTC day: last equity and its return on the previous day's last (first day: first row).
WITH curve AS (
    SELECT CAST(e.time AT TIME ZONE 'UTC' AS date) AS day, e.equity,
           row_number() OVER (PARTITION BY CAST(e.time AT TIME ZONE 'UTC' AS date)
                              ORDER BY e.time DESC) AS from_end,
           first_value(e.equity) OVER (ORDER BY e.time) AS first_equity
    FROM equity e WHERE e.run_id = :run_id
)
SELECT day, equity AS end_equity,
       equity / COALESCE(lag(equity) OVER (ORDER BY day), first_equity) - 1 AS daily_return
FROM curve
WHERE from_end = 1
ORDER BY day;

-- name: daily_pnl
-- The daily_pnl(run) stored function (install_procedures first).
SELECT * FROM daily_pnl(:run_id);

-- name: agent_performance
-- The agent_performance(run) stored function.
SELECT * FROM agent_performance(:run_id);

-- name: drawdown_series
-- The drawdown_series(run) stored function.
SELECT * FROM drawdown_series(:run_id);

-- name: exposure_snapshot
-- The exposure_snapshot(run, time) stored function, at :at.
SELECT * FROM exposure_snapshot(:run_id, :at);
