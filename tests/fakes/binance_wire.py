"""Binance spot's wire format for the matching engine's records: REST bodies and stream events.

Field names, order and string-encoded numbers follow Binance's documentation (and what ccxt's
`binance` parsers read): ``GET /api/v3/order``, ``POST /api/v3/order`` (ACK/RESULT/FULL),
``DELETE /api/v3/order``, ``GET /api/v3/myTrades``, ``GET /api/v3/account``, and the user
stream's ``executionReport`` and ``outboundAccountPosition`` events.
"""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal
from typing import Any, Final

from fakes.binance_matching import STOP_TYPES, BalanceChange, Execution, Fill, Order

Json = dict[str, Any]
STP_MODE: Final[str] = "EXPIRE_MAKER"


def num(value: Decimal) -> str:
    """Return a number as Binance writes it: a string with eight decimals."""
    return f"{value:.8f}"


def _tif(order: Order) -> str:
    return order.time_in_force or "GTC"


def order_json(order: Order) -> Json:
    """Return an order as ``GET /api/v3/order``, ``openOrders`` and ``allOrders`` list it."""
    return {
        "symbol": order.symbol,
        "orderId": order.order_id,
        "orderListId": -1,
        "clientOrderId": order.client_id,
        "price": num(order.price),
        "origQty": num(order.qty),
        "executedQty": num(order.executed),
        "cummulativeQuoteQty": num(order.cum_quote),
        "status": order.status,
        "timeInForce": _tif(order),
        "type": order.type,
        "side": order.side,
        "stopPrice": num(order.stop_price),
        "icebergQty": num(Decimal(0)),
        "time": order.time,
        "updateTime": order.update_time,
        "isWorking": order.working,
        "workingTime": order.working_time,
        "origQuoteOrderQty": num(order.quote_order_qty),
        "selfTradePreventionMode": STP_MODE,
    }


def new_order_json(order: Order, resp_type: str) -> Json:
    """Return the answer to ``POST /api/v3/order`` for ``newOrderRespType`` ACK, RESULT or FULL."""
    ack: Json = {
        "symbol": order.symbol,
        "orderId": order.order_id,
        "orderListId": -1,
        "clientOrderId": order.client_id,
        "transactTime": order.time,
    }
    if resp_type == "ACK":
        return ack
    result: Json = {
        **ack,
        "price": num(order.price),
        "origQty": num(order.qty),
        "executedQty": num(order.executed),
        "origQuoteOrderQty": num(order.quote_order_qty),
        "cummulativeQuoteQty": num(order.cum_quote),
        "status": order.status,
        "timeInForce": _tif(order),
        "type": order.type,
        "side": order.side,
    }
    if order.type in STOP_TYPES:
        result["stopPrice"] = num(order.stop_price)
    result["workingTime"] = order.working_time
    result["selfTradePreventionMode"] = STP_MODE
    if resp_type == "FULL":
        result["fills"] = [
            {
                "price": num(f.price),
                "qty": num(f.qty),
                "commission": num(f.commission),
                "commissionAsset": f.commission_asset,
                "tradeId": f.trade_id,
            }
            for f in order.fills
        ]
    return result


def cancel_json(order: Order, cancel_client_id: str, now: int) -> Json:
    """Return the answer to ``DELETE /api/v3/order`` (``clientOrderId`` is the cancel's own id)."""
    body: Json = {
        "symbol": order.symbol,
        "origClientOrderId": order.client_id,
        "orderId": order.order_id,
        "orderListId": -1,
        "clientOrderId": cancel_client_id,
        "transactTime": now,
        "price": num(order.price),
        "origQty": num(order.qty),
        "executedQty": num(order.executed),
        "origQuoteOrderQty": num(order.quote_order_qty),
        "cummulativeQuoteQty": num(order.cum_quote),
        "status": order.status,
        "timeInForce": _tif(order),
        "type": order.type,
        "side": order.side,
    }
    if order.type in STOP_TYPES:
        body["stopPrice"] = num(order.stop_price)
    body["selfTradePreventionMode"] = STP_MODE
    return body


def trade_json(fill: Fill) -> Json:
    """Return a fill as ``GET /api/v3/myTrades`` lists it."""
    return {
        "symbol": fill.symbol,
        "id": fill.trade_id,
        "orderId": fill.order_id,
        "orderListId": -1,
        "price": num(fill.price),
        "qty": num(fill.qty),
        "quoteQty": num(fill.quote_qty),
        "commission": num(fill.commission),
        "commissionAsset": fill.commission_asset,
        "time": fill.time,
        "isBuyer": fill.side == "BUY",
        "isMaker": fill.is_maker,
        "isBestMatch": True,
    }


def account_json(
    balances: dict[str, tuple[Decimal, Decimal]], now: int, commission: Decimal
) -> Json:
    """Return ``GET /api/v3/account``: permissions, commission rates and balances."""
    bps = int(commission * 10_000)
    rate = num(commission)
    return {
        "makerCommission": bps,
        "takerCommission": bps,
        "buyerCommission": 0,
        "sellerCommission": 0,
        "commissionRates": {"maker": rate, "taker": rate, "buyer": num(Decimal(0)),
                            "seller": num(Decimal(0))},
        "canTrade": True,
        "canWithdraw": True,
        "canDeposit": True,
        "brokered": False,
        "requireSelfTradePrevention": False,
        "preventSor": False,
        "updateTime": now,
        "accountType": "SPOT",
        "balances": [
            {"asset": a, "free": num(free), "locked": num(locked)}
            for a, (free, locked) in balances.items()
        ],
        "permissions": ["SPOT"],
        "uid": 354937868,
    }  # fmt: skip


def execution_report(event: Execution) -> Json:
    """Return the user stream's ``executionReport`` for one execution of an order."""
    order, fill, cancel_id = event.order, event.fill, event.cancel_id
    return {
        "e": "executionReport",
        "E": event.time,
        "s": order.symbol,
        "c": cancel_id or order.client_id,
        "S": order.side,
        "o": order.type,
        "f": _tif(order),
        "q": num(order.qty),
        "p": num(order.price),
        "P": num(order.stop_price),
        "F": num(Decimal(0)),
        "g": -1,
        "C": order.client_id if cancel_id else "",
        "x": event.exec_type,
        "X": order.status,
        "r": "NONE",
        "i": order.order_id,
        "l": num(fill.qty if fill else Decimal(0)),
        "z": num(order.executed),
        "L": num(fill.price if fill else Decimal(0)),
        "n": num(fill.commission if fill else Decimal(0)),
        "N": fill.commission_asset if fill else None,
        "T": event.time,
        "t": fill.trade_id if fill else -1,
        "v": -1,
        "I": 0,
        "w": order.is_open and order.working,
        "m": fill.is_maker if fill else False,
        "M": False,
        "O": order.time,
        "Z": num(order.cum_quote),
        "Y": num(fill.quote_qty if fill else Decimal(0)),
        "Q": num(order.quote_order_qty),
        "W": order.working_time,
        "V": STP_MODE,
    }


def account_position(change: BalanceChange) -> Json:
    """Return the user stream's ``outboundAccountPosition`` for changed balances."""
    return {
        "e": "outboundAccountPosition",
        "E": change.time,
        "u": change.time,
        "B": [{"a": a, "f": num(free), "l": num(locked)} for a, free, locked in change.balances],
    }


def orders_json(orders: Iterable[Order]) -> list[Json]:
    """Return a list of orders as ``openOrders`` / ``allOrders`` answer."""
    return [order_json(o) for o in orders]
