from __future__ import annotations

from decimal import Decimal

from services.execution.domain.broker import commission, fill_price
from services.execution.domain.config import CostModel, ExecutionConfig, SizingConfig
from services.execution.domain.sizing import floor_to_lot, target_quantity
from tests.unit.execution.helpers import NO_LIMITS, limits

D = Decimal


def test_fixed_qty_long_short_and_flat() -> None:
    s = SizingConfig(quantity=D(7), allow_short=True)
    assert target_quantity("long", s, NO_LIMITS, D(100), D(0)) == 7
    assert target_quantity("short", s, NO_LIMITS, D(100), D(0)) == -7
    assert target_quantity("flat", s, NO_LIMITS, D(100), D(0)) == 0


def test_short_target_without_allow_short_means_flat() -> None:
    assert target_quantity("short", SizingConfig(quantity=D(7)), NO_LIMITS, D(100), D(0)) == 0


def test_fixed_notional_floors_to_whole_lots() -> None:
    s = SizingConfig(policy="fixed_notional", notional=D(1050), lot_size=D(5))
    assert target_quantity("long", s, NO_LIMITS, D(10), D(0)) == 105
    s = SizingConfig(policy="fixed_notional", notional=D(1049), lot_size=D(5))
    assert target_quantity("long", s, NO_LIMITS, D(10), D(0)) == 100


def test_percent_of_equity() -> None:
    s = SizingConfig(policy="percent_equity", percent=D(10))
    assert target_quantity("long", s, NO_LIMITS, D(30), D(10_000)) == 33


def test_sizing_never_exceeds_risk_caps() -> None:
    s = SizingConfig(quantity=D(500))
    assert target_quantity("long", s, limits(max_position_qty=D(40)), D(10), D(0)) == 40
    assert target_quantity("long", s, limits(max_order_notional=D(1000)), D(30), D(0)) == 33


def test_floor_to_lot_of_nothing_is_zero() -> None:
    assert floor_to_lot(D(4), D(5)) == 0
    assert floor_to_lot(D(-4), D(1)) == 0


def test_slippage_and_rounding_go_against_the_taker() -> None:
    c = CostModel(slippage_bps=D(10), price_tick=D("0.05"))
    assert fill_price(D(100), "buy", c) == D("100.10")
    assert fill_price(D("100.01"), "buy", c) == D("100.15")
    assert fill_price(D("100.01"), "sell", c) == D("99.90")


def test_commission_is_percent_plus_flat_fee() -> None:
    c = CostModel(commission_pct=D("0.1"), flat_fee=D(20))
    assert commission(D(10_000), c) == D("30.00")


def test_the_default_commission_is_the_lower_of_0_03_percent_and_20() -> None:
    c = CostModel()
    assert commission(D(10_000), c) == D("3.00")  # 0.03% of 10,000
    assert commission(D(66_000), c) == D("19.80")
    assert commission(D(200_000), c) == D("20.00")  # capped
    assert commission(D(200_000), CostModel(commission_cap=None)) == D("60.00")
    assert commission(D(200_000), CostModel(flat_fee=D("1.5"))) == D("21.50")  # the flat fee is on top


def test_all_cash_sizing_buys_what_the_cash_pays_for_with_the_capped_commission() -> None:
    s = SizingConfig(policy="all_cash")
    capped = CostModel()
    # 9,999 x 100 + 20 (the cap) = 999,920 <= 1,000,000; 10,000 units would need 1,000,020
    assert target_quantity("long", s, NO_LIMITS, D(100), D(1_000_000), capped) == 9_999
    # uncapped, 0.03% of the notional: 9,997 x 100 x 1.0003 = 999,999.91
    uncapped = CostModel(commission_cap=None)
    assert target_quantity("long", s, NO_LIMITS, D(100), D(1_000_000), uncapped) == 9_997
    # below the cap the percent binds: 99 x 100 x 1.0003 = 9,902.97 and the fee (2.97) is under 20
    assert target_quantity("long", s, NO_LIMITS, D(100), D(9_905), capped) == 99
    for equity in (D(1_000_000), D(9_905), D(123_456)):
        quantity = target_quantity("long", s, NO_LIMITS, D(100), equity, capped)
        assert quantity * 100 + commission(quantity * 100, capped) <= equity
        more = (quantity + 1) * 100
        assert more + commission(more, capped) > equity


def test_india_delivery_preset_is_selected_by_name() -> None:
    cfg = ExecutionConfig(cost_preset="india_equity_delivery")
    costs = cfg.effective_costs()
    assert costs.commission_pct == D("0.119")
    assert costs.flat_fee == D("15.93")
    assert costs.commission_cap is None
    assert costs.price_tick == D("0.05")


def test_defaults_are_paper_and_limited() -> None:
    cfg = ExecutionConfig()
    assert cfg.mode == "paper"
    assert not cfg.live_opt_in
    assert all(v != "off" for k, v in cfg.limits.as_strings().items() if k != "max_signal_age_seconds")
