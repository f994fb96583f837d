-- reinforcetrade journal on PostgreSQL: the schema, then the analysis functions.
--
-- The schema section is generated from reinforcetrade.storage.schema.metadata (the one source
-- of truth, also behind the Alembic migration); do not edit it by hand, regenerate it with
--     python -m reinforcetrade.storage.analysis ddl --write
-- Apply the whole file to an empty schema with: psql -v ON_ERROR_STOP=1 -f sql/init.sql
-- (reinforcetrade.storage.analysis.install_procedures runs only the functions part).

-- BEGIN GENERATED SCHEMA (python -m reinforcetrade.storage.analysis ddl)
CREATE TABLE audit_log (
    id BIGSERIAL NOT NULL,
    uid VARCHAR(32) NOT NULL,
    time TIMESTAMP WITH TIME ZONE NOT NULL,
    actor VARCHAR(100) NOT NULL,
    client VARCHAR(100),
    action VARCHAR(32) NOT NULL,
    target VARCHAR(200),
    reason TEXT,
    outcome VARCHAR(16) NOT NULL,
    detail TEXT,
    CONSTRAINT pk_audit_log PRIMARY KEY (id),
    CONSTRAINT ck_audit_log_outcome CHECK (outcome IN ('done', 'refused', 'failed')),
    CONSTRAINT uq_audit_log_uid UNIQUE (uid)
);

CREATE INDEX ix_audit_log_time ON audit_log (time);

CREATE TABLE engine_locks (
    name VARCHAR(200) NOT NULL,
    token VARCHAR(32) NOT NULL,
    owner VARCHAR(200) NOT NULL,
    host VARCHAR(255) NOT NULL,
    pid INTEGER NOT NULL,
    acquired_at TIMESTAMP WITH TIME ZONE NOT NULL,
    heartbeat_at TIMESTAMP WITH TIME ZONE NOT NULL,
    CONSTRAINT pk_engine_locks PRIMARY KEY (name)
);

CREATE TABLE model_versions (
    id BIGSERIAL NOT NULL,
    model_id VARCHAR(200) NOT NULL,
    algorithm VARCHAR(32) NOT NULL,
    symbol VARCHAR(64),
    timeframe VARCHAR(16),
    created TIMESTAMP WITH TIME ZONE NOT NULL,
    metrics JSONB,
    path TEXT,
    CONSTRAINT pk_model_versions PRIMARY KEY (id),
    CONSTRAINT uq_model_versions_model_id UNIQUE (model_id)
);

CREATE INDEX ix_model_versions_symbol_timeframe ON model_versions (symbol, timeframe);

CREATE TABLE retrains (
    id BIGSERIAL NOT NULL,
    uid VARCHAR(32) NOT NULL,
    time TIMESTAMP WITH TIME ZONE NOT NULL,
    started TIMESTAMP WITH TIME ZONE NOT NULL,
    symbol VARCHAR(64) NOT NULL,
    timeframe VARCHAR(16) NOT NULL,
    algorithm VARCHAR(32) NOT NULL,
    trigger VARCHAR(16) NOT NULL,
    verdict VARCHAR(16) NOT NULL,
    reason TEXT NOT NULL,
    metric VARCHAR(64) NOT NULL,
    challenger VARCHAR(200),
    champion VARCHAR(200),
    challenger_value DOUBLE PRECISION,
    champion_value DOUBLE PRECISION,
    margin DOUBLE PRECISION NOT NULL,
    deflated_sharpe DOUBLE PRECISION,
    trials INTEGER NOT NULL,
    tried JSONB NOT NULL,
    figures JSONB NOT NULL,
    weights JSONB,
    data JSONB NOT NULL,
    CONSTRAINT pk_retrains PRIMARY KEY (id),
    CONSTRAINT ck_retrains_trigger CHECK (trigger IN ('manual', 'schedule')),
    CONSTRAINT ck_retrains_verdict CHECK (verdict IN ('promoted', 'kept', 'failed')),
    CONSTRAINT uq_retrains_uid UNIQUE (uid)
);

CREATE INDEX ix_retrains_symbol_timeframe_time ON retrains (symbol, timeframe, time);

CREATE TABLE runs (
    id BIGSERIAL NOT NULL,
    uid VARCHAR(32) NOT NULL,
    kind VARCHAR(16) NOT NULL,
    name VARCHAR(200) NOT NULL,
    started_at TIMESTAMP WITH TIME ZONE NOT NULL,
    ended_at TIMESTAMP WITH TIME ZONE,
    status VARCHAR(16) NOT NULL,
    config_hash VARCHAR(128),
    settings JSONB,
    symbols JSONB,
    timeframe VARCHAR(16),
    host VARCHAR(255),
    pid INTEGER,
    version VARCHAR(64),
    CONSTRAINT pk_runs PRIMARY KEY (id),
    CONSTRAINT ck_runs_kind CHECK (kind IN ('backtest', 'paper', 'live')),
    CONSTRAINT ck_runs_status CHECK (status IN ('running', 'completed', 'stopped', 'failed')),
    CONSTRAINT uq_runs_uid UNIQUE (uid)
);

CREATE INDEX ix_runs_kind_started_at ON runs (kind, started_at);

CREATE INDEX ix_runs_name_started_at ON runs (name, started_at);

CREATE TABLE bars (
    run_id BIGINT NOT NULL,
    symbol VARCHAR(64) NOT NULL,
    time TIMESTAMP WITH TIME ZONE NOT NULL,
    open DOUBLE PRECISION NOT NULL,
    high DOUBLE PRECISION NOT NULL,
    low DOUBLE PRECISION NOT NULL,
    close DOUBLE PRECISION NOT NULL,
    volume DOUBLE PRECISION NOT NULL,
    CONSTRAINT uq_bars_run_id_symbol_time UNIQUE (run_id, symbol, time),
    CONSTRAINT fk_bars_run_id_runs FOREIGN KEY(run_id) REFERENCES runs (id) ON DELETE CASCADE
);

CREATE INDEX ix_bars_symbol_time ON bars (symbol, time);

CREATE TABLE decisions (
    id BIGSERIAL NOT NULL,
    run_id BIGINT NOT NULL,
    number INTEGER NOT NULL,
    time TIMESTAMP WITH TIME ZONE NOT NULL,
    symbol VARCHAR(64) NOT NULL,
    action VARCHAR(16) NOT NULL,
    direction INTEGER NOT NULL,
    confidence DOUBLE PRECISION,
    threshold DOUBLE PRECISION,
    agreeing INTEGER,
    regime VARCHAR(32),
    vol_regime VARCHAR(16),
    trend_regime VARCHAR(16),
    size DOUBLE PRECISION,
    qty DOUBLE PRECISION,
    stop DOUBLE PRECISION,
    take_profit DOUBLE PRECISION,
    reasons TEXT,
    reason_codes TEXT,
    reason_mask INTEGER NOT NULL,
    exit_reason VARCHAR(16),
    cost_estimate_bps DOUBLE PRECISION,
    algo VARCHAR(16),
    CONSTRAINT pk_decisions PRIMARY KEY (id),
    CONSTRAINT uq_decisions_run_id_number UNIQUE (run_id, number),
    CONSTRAINT fk_decisions_run_id_runs FOREIGN KEY(run_id) REFERENCES runs (id) ON DELETE CASCADE
);

CREATE INDEX ix_decisions_run_id_time ON decisions (run_id, time);

CREATE INDEX ix_decisions_symbol_time ON decisions (symbol, time);

CREATE TABLE equity (
    run_id BIGINT NOT NULL,
    time TIMESTAMP WITH TIME ZONE NOT NULL,
    equity DOUBLE PRECISION NOT NULL,
    cash DOUBLE PRECISION,
    exposure DOUBLE PRECISION,
    CONSTRAINT uq_equity_run_id_time UNIQUE (run_id, time),
    CONSTRAINT fk_equity_run_id_runs FOREIGN KEY(run_id) REFERENCES runs (id) ON DELETE CASCADE
);

CREATE TABLE fills (
    id BIGSERIAL NOT NULL,
    run_id BIGINT,
    client_order_id VARCHAR(100),
    exchange VARCHAR(64) NOT NULL,
    exchange_trade_id VARCHAR(100) NOT NULL,
    symbol VARCHAR(64) NOT NULL,
    side VARCHAR(4) NOT NULL,
    time TIMESTAMP WITH TIME ZONE NOT NULL,
    qty DOUBLE PRECISION NOT NULL,
    price DOUBLE PRECISION NOT NULL,
    fee DOUBLE PRECISION,
    fee_currency VARCHAR(16),
    liquidity VARCHAR(8),
    reference_price DOUBLE PRECISION,
    slippage DOUBLE PRECISION,
    slippage_bps DOUBLE PRECISION,
    latency_ms DOUBLE PRECISION,
    reconciliation BOOLEAN NOT NULL,
    CONSTRAINT pk_fills PRIMARY KEY (id),
    CONSTRAINT uq_fills_exchange_symbol_exchange_trade_id UNIQUE (exchange, symbol, exchange_trade_id),
    CONSTRAINT ck_fills_side CHECK (side IN ('buy', 'sell')),
    CONSTRAINT ck_fills_liquidity CHECK (liquidity IS NULL OR liquidity IN ('maker', 'taker')),
    CONSTRAINT fk_fills_run_id_runs FOREIGN KEY(run_id) REFERENCES runs (id) ON DELETE CASCADE
);

CREATE INDEX ix_fills_client_order_id ON fills (client_order_id);

CREATE INDEX ix_fills_run_id_time ON fills (run_id, time);

CREATE INDEX ix_fills_symbol_time ON fills (symbol, time);

CREATE TABLE orders (
    id BIGSERIAL NOT NULL,
    client_order_id VARCHAR(100) NOT NULL,
    run_id BIGINT NOT NULL,
    decision_number INTEGER,
    symbol VARCHAR(64) NOT NULL,
    side VARCHAR(4) NOT NULL,
    type VARCHAR(16) NOT NULL,
    qty DOUBLE PRECISION NOT NULL,
    price DOUBLE PRECISION,
    stop_price DOUBLE PRECISION,
    status VARCHAR(16) NOT NULL,
    exchange_order_id VARCHAR(100),
    filled_qty DOUBLE PRECISION NOT NULL,
    avg_price DOUBLE PRECISION,
    reason TEXT,
    created_at TIMESTAMP WITH TIME ZONE NOT NULL,
    updated_at TIMESTAMP WITH TIME ZONE NOT NULL,
    venue VARCHAR(200),
    route JSONB,
    CONSTRAINT pk_orders PRIMARY KEY (id),
    CONSTRAINT ck_orders_side CHECK (side IN ('buy', 'sell')),
    CONSTRAINT ck_orders_type CHECK (type IN ('market', 'limit', 'stop', 'stop_limit')),
    CONSTRAINT ck_orders_status CHECK (status IN ('pending', 'submitted', 'partially_filled', 'filled', 'cancelled', 'rejected', 'expired')),
    CONSTRAINT uq_orders_client_order_id UNIQUE (client_order_id),
    CONSTRAINT fk_orders_run_id_runs FOREIGN KEY(run_id) REFERENCES runs (id) ON DELETE CASCADE
);

CREATE INDEX ix_orders_run_id_created_at ON orders (run_id, created_at);

CREATE INDEX ix_orders_status ON orders (status);

CREATE INDEX ix_orders_symbol_created_at ON orders (symbol, created_at);

CREATE TABLE positions (
    id BIGSERIAL NOT NULL,
    run_id BIGINT NOT NULL,
    symbol VARCHAR(64) NOT NULL,
    qty DOUBLE PRECISION NOT NULL,
    avg_price DOUBLE PRECISION,
    realised_pnl DOUBLE PRECISION NOT NULL,
    opened_at TIMESTAMP WITH TIME ZONE NOT NULL,
    closed_at TIMESTAMP WITH TIME ZONE,
    stop_client_order_id VARCHAR(100),
    updated_at TIMESTAMP WITH TIME ZONE NOT NULL,
    CONSTRAINT pk_positions PRIMARY KEY (id),
    CONSTRAINT fk_positions_run_id_runs FOREIGN KEY(run_id) REFERENCES runs (id) ON DELETE CASCADE
);

CREATE UNIQUE INDEX ix_positions_open ON positions (run_id, symbol) WHERE closed_at IS NULL;

CREATE TABLE risk_events (
    id BIGSERIAL NOT NULL,
    uid VARCHAR(32) NOT NULL,
    run_id BIGINT,
    time TIMESTAMP WITH TIME ZONE NOT NULL,
    kind VARCHAR(16) NOT NULL,
    state VARCHAR(16) NOT NULL,
    reason TEXT,
    actor VARCHAR(100),
    CONSTRAINT pk_risk_events PRIMARY KEY (id),
    CONSTRAINT ck_risk_events_kind CHECK (kind IN ('halt', 'resume', 'reducing', 'breaker', 'streak_cut', 'reconcile', 'alert', 'stale_data')),
    CONSTRAINT ck_risk_events_state CHECK (state IN ('active', 'reducing', 'halted')),
    CONSTRAINT uq_risk_events_uid UNIQUE (uid),
    CONSTRAINT fk_risk_events_run_id_runs FOREIGN KEY(run_id) REFERENCES runs (id) ON DELETE CASCADE
);

CREATE INDEX ix_risk_events_run_id_time ON risk_events (run_id, time);

CREATE TABLE trades (
    id BIGSERIAL NOT NULL,
    run_id BIGINT NOT NULL,
    number INTEGER NOT NULL,
    symbol VARCHAR(64) NOT NULL,
    side VARCHAR(8) NOT NULL,
    entry_time TIMESTAMP WITH TIME ZONE NOT NULL,
    exit_time TIMESTAMP WITH TIME ZONE,
    qty DOUBLE PRECISION NOT NULL,
    entry_price DOUBLE PRECISION NOT NULL,
    exit_price DOUBLE PRECISION,
    commission DOUBLE PRECISION,
    slippage DOUBLE PRECISION,
    borrow DOUBLE PRECISION,
    pnl DOUBLE PRECISION,
    ret DOUBLE PRECISION,
    exit_reason VARCHAR(16),
    decision_number INTEGER,
    CONSTRAINT pk_trades PRIMARY KEY (id),
    CONSTRAINT uq_trades_run_id_number UNIQUE (run_id, number),
    CONSTRAINT ck_trades_side CHECK (side IN ('long', 'short')),
    CONSTRAINT fk_trades_run_id_runs FOREIGN KEY(run_id) REFERENCES runs (id) ON DELETE CASCADE
);

CREATE INDEX ix_trades_run_id_entry_time ON trades (run_id, entry_time);

CREATE INDEX ix_trades_symbol_entry_time ON trades (symbol, entry_time);

CREATE TABLE venue_stats (
    id BIGSERIAL NOT NULL,
    run_id BIGINT NOT NULL,
    venue VARCHAR(64) NOT NULL,
    orders INTEGER NOT NULL,
    fills INTEGER NOT NULL,
    rejects INTEGER NOT NULL,
    errors INTEGER NOT NULL,
    fill_ratio DOUBLE PRECISION,
    reject_rate DOUBLE PRECISION,
    slippage_bps DOUBLE PRECISION,
    latency_p50_ms DOUBLE PRECISION,
    latency_p99_ms DOUBLE PRECISION,
    health VARCHAR(16) NOT NULL,
    updated_at TIMESTAMP WITH TIME ZONE NOT NULL,
    CONSTRAINT pk_venue_stats PRIMARY KEY (id),
    CONSTRAINT uq_venue_stats_run_id_venue UNIQUE (run_id, venue),
    CONSTRAINT ck_venue_stats_health CHECK (health IN ('ok', 'degraded', 'down')),
    CONSTRAINT fk_venue_stats_run_id_runs FOREIGN KEY(run_id) REFERENCES runs (id) ON DELETE CASCADE
);

CREATE TABLE decision_agents (
    decision_id BIGINT NOT NULL,
    agent VARCHAR(64) NOT NULL,
    signal INTEGER NOT NULL,
    confidence DOUBLE PRECISION,
    weight DOUBLE PRECISION,
    CONSTRAINT uq_decision_agents_decision_id_agent UNIQUE (decision_id, agent),
    CONSTRAINT fk_decision_agents_decision_id_decisions FOREIGN KEY(decision_id) REFERENCES decisions (id) ON DELETE CASCADE
);

CREATE TABLE order_events (
    id BIGSERIAL NOT NULL,
    uid VARCHAR(32) NOT NULL,
    client_order_id VARCHAR(100) NOT NULL,
    time TIMESTAMP WITH TIME ZONE NOT NULL,
    from_status VARCHAR(16),
    to_status VARCHAR(16) NOT NULL,
    detail TEXT,
    CONSTRAINT pk_order_events PRIMARY KEY (id),
    CONSTRAINT uq_order_events_uid UNIQUE (uid),
    CONSTRAINT fk_order_events_client_order_id_orders FOREIGN KEY(client_order_id) REFERENCES orders (client_order_id) ON DELETE CASCADE
);

CREATE INDEX ix_order_events_client_order_id_time ON order_events (client_order_id, time);
-- END GENERATED SCHEMA

-- ------------------------------------------------------------------------------------------
-- Stored functions (hand-written). Money is in the account currency; times are UTC.
-- ------------------------------------------------------------------------------------------

-- record_fill: insert one fill unless (exchange, symbol, exchange_trade_id) is known;
-- returns true when the row is new, false when it was already recorded (idempotent).
CREATE OR REPLACE FUNCTION record_fill(
    p_run_id bigint,
    p_client_order_id varchar,
    p_exchange varchar,
    p_exchange_trade_id varchar,
    p_symbol varchar,
    p_side varchar,
    p_time timestamptz,
    p_qty double precision,
    p_price double precision,
    p_fee double precision DEFAULT NULL,
    p_reference_price double precision DEFAULT NULL,
    p_slippage double precision DEFAULT NULL,
    p_slippage_bps double precision DEFAULT NULL,
    p_latency_ms double precision DEFAULT NULL
) RETURNS boolean
LANGUAGE plpgsql AS $$
DECLARE
    inserted integer;
BEGIN
    INSERT INTO fills (
        run_id, client_order_id, exchange, exchange_trade_id, symbol, side, time, qty, price,
        fee, reference_price, slippage, slippage_bps, latency_ms, reconciliation
    ) VALUES (
        p_run_id, p_client_order_id, p_exchange, p_exchange_trade_id, p_symbol, p_side, p_time,
        p_qty, p_price, p_fee, p_reference_price, p_slippage, p_slippage_bps, p_latency_ms, false
    )
    ON CONFLICT (exchange, symbol, exchange_trade_id) DO NOTHING;
    GET DIAGNOSTICS inserted = ROW_COUNT;
    RETURN inserted > 0;
END;
$$;

-- close_position: close the open position of a run and symbol at a price and time, adding
-- qty * (price - avg_price) to its realised P&L (qty is signed, so shorts work too); returns
-- the position's realised P&L, or NULL when the run has no open position in the symbol.
CREATE OR REPLACE FUNCTION close_position(
    p_run_id bigint, p_symbol varchar, p_time timestamptz, p_price double precision
) RETURNS double precision
LANGUAGE plpgsql AS $$
DECLARE
    result double precision;
BEGIN
    UPDATE positions
    SET realised_pnl = realised_pnl + qty * (p_price - COALESCE(avg_price, p_price)),
        closed_at = p_time,
        updated_at = p_time
    WHERE run_id = p_run_id AND symbol = p_symbol AND closed_at IS NULL
    RETURNING realised_pnl INTO result;
    RETURN result;
END;
$$;

-- daily_pnl: per UTC day of the equity curve: closed trades, their realised P&L, the fees
-- paid on fills, the day's last equity and its change since the previous day's last equity
-- (on the first day, since the first equity row).
CREATE OR REPLACE FUNCTION daily_pnl(p_run_id bigint)
RETURNS TABLE (
    day date, trades bigint, realised_pnl double precision, fees double precision,
    end_equity double precision, equity_change double precision
)
LANGUAGE sql STABLE AS $$
    WITH curve AS (
        SELECT (e.time AT TIME ZONE 'UTC')::date AS day, e.time, e.equity,
               row_number() OVER (PARTITION BY (e.time AT TIME ZONE 'UTC')::date
                                  ORDER BY e.time DESC) AS from_end,
               first_value(e.equity) OVER (ORDER BY e.time) AS first_equity
        FROM equity e WHERE e.run_id = p_run_id
    ), days AS (
        SELECT c.day, c.equity AS end_equity, c.first_equity FROM curve c WHERE c.from_end = 1
    ), closed AS (
        SELECT (t.exit_time AT TIME ZONE 'UTC')::date AS day, count(*) AS trades,
               sum(t.pnl) AS realised_pnl
        FROM trades t WHERE t.run_id = p_run_id AND t.exit_time IS NOT NULL GROUP BY 1
    ), paid AS (
        SELECT (f.time AT TIME ZONE 'UTC')::date AS day, sum(f.fee) AS fees
        FROM fills f WHERE f.run_id = p_run_id GROUP BY 1
    )
    SELECT d.day, COALESCE(c.trades, 0), COALESCE(c.realised_pnl, 0), COALESCE(p.fees, 0),
           d.end_equity,
           d.end_equity - COALESCE(lag(d.end_equity) OVER (ORDER BY d.day), d.first_equity)
    FROM days d
    LEFT JOIN closed c ON c.day = d.day
    LEFT JOIN paid p ON p.day = d.day
    ORDER BY d.day;
$$;

-- agent_performance: per agent: votes (decisions with a non-zero signal), trades (closed
-- trades whose entry decision the agent voted on), hits (signal sign = sign of the trade's
-- return), hit_rate = hits / trades, and the trades' P&L attributed by the agent's share of
-- the entry decision's total weight.
CREATE OR REPLACE FUNCTION agent_performance(p_run_id bigint)
RETURNS TABLE (
    agent varchar, votes bigint, trades bigint, hits bigint, hit_rate double precision,
    attributed_pnl double precision
)
LANGUAGE sql STABLE AS $$
    WITH votes AS (
        SELECT d.id AS decision_id, d.number, a.agent, a.signal, a.weight,
               sum(a.weight) OVER (PARTITION BY d.id) AS total_weight
        FROM decisions d JOIN decision_agents a ON a.decision_id = d.id
        WHERE d.run_id = p_run_id
    ), judged AS (
        SELECT v.agent, v.signal, t.ret, t.pnl,
               CASE WHEN v.total_weight > 0 THEN v.weight / v.total_weight END AS share
        FROM votes v JOIN trades t
          ON t.run_id = p_run_id AND t.decision_number = v.number AND t.ret IS NOT NULL
    )
    SELECT a.agent,
           (SELECT count(*) FROM votes v WHERE v.agent = a.agent AND v.signal <> 0),
           count(*) FILTER (WHERE j.signal <> 0),
           count(*) FILTER (WHERE j.signal * j.ret > 0),
           (count(*) FILTER (WHERE j.signal * j.ret > 0))::double precision
               / NULLIF(count(*) FILTER (WHERE j.signal <> 0), 0),
           COALESCE(sum(j.pnl * j.share), 0)
    FROM (SELECT DISTINCT agent FROM votes) a
    LEFT JOIN judged j ON j.agent = a.agent
    GROUP BY a.agent
    ORDER BY a.agent;
$$;

-- drawdown_series: per equity row: the running peak and the drawdown equity / peak - 1 (<= 0).
CREATE OR REPLACE FUNCTION drawdown_series(p_run_id bigint)
RETURNS TABLE (
    "time" timestamptz, equity double precision, peak double precision,
    drawdown double precision
)
LANGUAGE sql STABLE AS $$
    SELECT s.time, s.equity, s.peak, s.equity / s.peak - 1
    FROM (
        SELECT e.time, e.equity, max(e.equity) OVER (ORDER BY e.time) AS peak
        FROM equity e WHERE e.run_id = p_run_id
    ) s
    ORDER BY s.time;
$$;

-- exposure_snapshot: at a time, per symbol traded so far: the net quantity from fills (buys
-- positive), the last price (last bar close, else last fill price), the value qty * price, the
-- equity at that time and the value's share of it.
CREATE OR REPLACE FUNCTION exposure_snapshot(p_run_id bigint, p_time timestamptz)
RETURNS TABLE (
    symbol varchar, qty double precision, price double precision, value double precision,
    equity double precision, weight double precision
)
LANGUAGE sql STABLE AS $$
    WITH held AS (
        SELECT f.symbol,
               sum(CASE WHEN f.side = 'buy' THEN f.qty ELSE -f.qty END) AS qty
        FROM fills f WHERE f.run_id = p_run_id AND f.time <= p_time GROUP BY f.symbol
    ), priced AS (
        SELECT h.symbol, h.qty,
               COALESCE(
                   (SELECT b.close FROM bars b WHERE b.run_id = p_run_id
                      AND b.symbol = h.symbol AND b.time <= p_time
                    ORDER BY b.time DESC LIMIT 1),
                   (SELECT f.price FROM fills f WHERE f.run_id = p_run_id
                      AND f.symbol = h.symbol AND f.time <= p_time
                    ORDER BY f.time DESC, f.id DESC LIMIT 1)
               ) AS price,
               (SELECT e.equity FROM equity e WHERE e.run_id = p_run_id AND e.time <= p_time
                ORDER BY e.time DESC LIMIT 1) AS equity
        FROM held h
    )
    SELECT p.symbol, p.qty, p.price, p.qty * p.price, p.equity,
           p.qty * p.price / NULLIF(p.equity, 0)
    FROM priced p
    ORDER BY p.symbol;
$$;
