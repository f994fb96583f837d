-- Analysis queries on a SQLite journal: the same names and columns as analysis_queries.sql,
-- plus the PostgreSQL stored functions of init.sql as plain SELECTs (daily_pnl,
-- agent_performance, drawdown_series, exposure_snapshot). Times are stored as UTC text
-- 'YYYY-MM-DD HH:MM:SS.ffffff'; run_query binds :at in that form.

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
       CAST(count(*) FILTER (WHERE signal * ret > 0) AS REAL)
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
SELECT CAST(strftime('%H', t.exit_time) AS INTEGER) AS hour,
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
SELECT min(CAST(d.confidence * 10 AS INTEGER), 9) AS decile,
       count(*) AS trades,
       count(*) FILTER (WHERE t.pnl > 0) AS wins,
       CAST(count(*) FILTER (WHERE t.pnl > 0) AS REAL) / count(*) AS win_rate,
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
           - row_number() OVER (
               PARTITION BY CASE WHEN t.pnl > 0 THEN 1 WHEN t.pnl < 0 THEN -1 ELSE 0 END
               ORDER BY t.exit_time, t.number
           ) AS grp
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
           - row_number() OVER (
               PARTITION BY CASE WHEN t.pnl > 0 THEN 1 WHEN t.pnl < 0 THEN -1 ELSE 0 END
               ORDER BY t.exit_time, t.number
           ) AS grp
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
WITH RECURSIVE split(code, rest) AS (
    SELECT '', d.reason_codes || '|'
    FROM decisions d
    WHERE d.run_id = :run_id AND d.action = 'blocked' AND d.reason_codes IS NOT NULL
    UNION ALL
    SELECT substr(rest, 1, instr(rest, '|') - 1), substr(rest, instr(rest, '|') + 1)
    FROM split
    WHERE rest <> ''
)
SELECT code, count(*) AS decisions
FROM split
WHERE code <> ''
GROUP BY code
ORDER BY code;

-- name: exposure_by_symbol
-- Per symbol from fills: buys, sells, net quantity, traded notional, last price, net value.
WITH ranked AS (
    SELECT f.symbol, f.price,
           row_number() OVER (PARTITION BY f.symbol ORDER BY f.time DESC, f.id DESC) AS from_end
    FROM fills f WHERE f.run_id = :run_id
)
SELECT f.symbol,
       count(*) FILTER (WHERE f.side = 'buy') AS buys,
       count(*) FILTER (WHERE f.side = 'sell') AS sells,
       sum(CASE WHEN f.side = 'buy' THEN f.qty ELSE -f.qty END) AS net_qty,
       sum(f.qty * f.price) AS traded_notional,
       l.price AS last_price,
       sum(CASE WHEN f.side = 'buy' THEN f.qty ELSE -f.qty END) * l.price AS net_value
FROM fills f
JOIN ranked l ON l.symbol = f.symbol AND l.from_end = 1
WHERE f.run_id = :run_id
GROUP BY f.symbol, l.price
ORDER BY f.symbol;

-- name: trade_duration_stats
-- Closed trades by side: count and mean, shortest and longest holding time in hours.
SELECT t.side,
       count(*) AS trades,
       avg(CAST(strftime('%s', t.exit_time) AS INTEGER)
           - CAST(strftime('%s', t.entry_time) AS INTEGER)) / 3600.0 AS mean_hours,
       min(CAST(strftime('%s', t.exit_time) AS INTEGER)
           - CAST(strftime('%s', t.entry_time) AS INTEGER)) / 3600.0 AS min_hours,
       max(CAST(strftime('%s', t.exit_time) AS INTEGER)
           - CAST(strftime('%s', t.entry_time) AS INTEGER)) / 3600.0 AS max_hours
FROM trades t
WHERE t.run_id = :run_id AND t.exit_time IS NOT NULL
GROUP BY t.side
ORDER BY t.side;

-- name: daily_returns
-- Per UTC day: last equity and its return on the previous day's last (first day: first row).
WITH curve AS (
    SELECT date(e.time) AS day, e.equity,
           row_number() OVER (PARTITION BY date(e.time) ORDER BY e.time DESC) AS from_end,
           first_value(e.equity) OVER (ORDER BY e.time) AS first_equity
    FROM equity e WHERE e.run_id = :run_id
)
SELECT day, equity AS end_equity,
       equity / COALESCE(lag(equity) OVER (ORDER BY day), first_equity) - 1 AS daily_return
FROM curve
WHERE from_end = 1
ORDER BY day;

-- name: daily_pnl
-- init.sql's daily_pnl(run): per UTC day trades closed, realised P&L, fees, equity change.
WITH curve AS (
    SELECT date(e.time) AS day, e.equity,
           row_number() OVER (PARTITION BY date(e.time) ORDER BY e.time DESC) AS from_end,
           first_value(e.equity) OVER (ORDER BY e.time) AS first_equity
    FROM equity e WHERE e.run_id = :run_id
), days AS (
    SELECT day, equity AS end_equity, first_equity FROM curve WHERE from_end = 1
), closed AS (
    SELECT date(t.exit_time) AS day, count(*) AS trades, sum(t.pnl) AS realised_pnl
    FROM trades t WHERE t.run_id = :run_id AND t.exit_time IS NOT NULL GROUP BY 1
), paid AS (
    SELECT date(f.time) AS day, sum(f.fee) AS fees
    FROM fills f WHERE f.run_id = :run_id GROUP BY 1
)
SELECT d.day, COALESCE(c.trades, 0) AS trades, COALESCE(c.realised_pnl, 0) AS realised_pnl,
       COALESCE(p.fees, 0) AS fees, d.end_equity,
       d.end_equity - COALESCE(lag(d.end_equity) OVER (ORDER BY d.day), d.first_equity)
           AS equity_change
FROM days d
LEFT JOIN closed c ON c.day = d.day
LEFT JOIN paid p ON p.day = d.day
ORDER BY d.day;

-- name: agent_performance
-- init.sql's agent_performance(run): votes, trades, hits, hit rate, weight-attributed P&L.
WITH votes AS (
    SELECT d.id AS decision_id, d.number, a.agent, a.signal, a.weight,
           sum(a.weight) OVER (PARTITION BY d.id) AS total_weight
    FROM decisions d JOIN decision_agents a ON a.decision_id = d.id
    WHERE d.run_id = :run_id
), judged AS (
    SELECT v.agent, v.signal, t.ret, t.pnl,
           CASE WHEN v.total_weight > 0 THEN v.weight / v.total_weight END AS share
    FROM votes v JOIN trades t
      ON t.run_id = :run_id AND t.decision_number = v.number AND t.ret IS NOT NULL
)
SELECT a.agent,
       (SELECT count(*) FROM votes v WHERE v.agent = a.agent AND v.signal <> 0) AS votes,
       count(*) FILTER (WHERE j.signal <> 0) AS trades,
       count(*) FILTER (WHERE j.signal * j.ret > 0) AS hits,
       CAST(count(*) FILTER (WHERE j.signal * j.ret > 0) AS REAL)
           / NULLIF(count(*) FILTER (WHERE j.signal <> 0), 0) AS hit_rate,
       COALESCE(sum(j.pnl * j.share), 0) AS attributed_pnl
FROM (SELECT DISTINCT agent FROM votes) a
LEFT JOIN judged j ON j.agent = a.agent
GROUP BY a.agent
ORDER BY a.agent;

-- name: drawdown_series
-- init.sql's drawdown_series(run): per equity row the running peak and equity / peak - 1.
SELECT time, equity, peak, equity / peak - 1 AS drawdown
FROM (
    SELECT e.time, e.equity, max(e.equity) OVER (ORDER BY e.time) AS peak
    FROM equity e WHERE e.run_id = :run_id
)
ORDER BY time;

-- name: exposure_snapshot
-- init.sql's exposure_snapshot(run, time) at :at: net fill qty, last price, value, weight.
WITH held AS (
    SELECT f.symbol, sum(CASE WHEN f.side = 'buy' THEN f.qty ELSE -f.qty END) AS qty
    FROM fills f WHERE f.run_id = :run_id AND f.time <= :at GROUP BY f.symbol
), priced AS (
    SELECT h.symbol, h.qty,
           COALESCE(
               (SELECT b.close FROM bars b WHERE b.run_id = :run_id
                  AND b.symbol = h.symbol AND b.time <= :at
                ORDER BY b.time DESC LIMIT 1),
               (SELECT f.price FROM fills f WHERE f.run_id = :run_id
                  AND f.symbol = h.symbol AND f.time <= :at
                ORDER BY f.time DESC, f.id DESC LIMIT 1)
           ) AS price,
           (SELECT e.equity FROM equity e WHERE e.run_id = :run_id AND e.time <= :at
            ORDER BY e.time DESC LIMIT 1) AS equity
    FROM held h
)
SELECT symbol, qty, price, qty * price AS value, equity, qty * price / NULLIF(equity, 0) AS weight
FROM priced
ORDER BY symbol;
