"""Install a strategy plugin the way ``pip install`` of a plugin package does, for the real
``importlib.metadata`` entry-point lookup of ``services.strategy.domain.registry``."""

from __future__ import annotations

import os
from pathlib import Path
from typing import ClassVar

import pytest

from services.strategy.domain.base import BaseStrategy, StrategyContext, StrategyParams, StrategyResult
from services.strategy.domain.registry import ENTRY_POINT_GROUP
from shared.contracts.analytics import InsightEvent
from shared.contracts.market_data import OHLCVBar


def install_plugins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, *eps: tuple[str, str]) -> None:
    """A distribution declaring ``eps`` (name, ``module:attr``) in the ``bastion.strategies`` group, in a
    directory put first on ``sys.path`` for the rest of the test."""
    info = tmp_path / "bastion_test_plugin-1.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: bastion-test-plugin\nVersion: 1.0\n")
    lines = "".join(f"{name} = {value}\n" for name, value in eps)
    (info / "entry_points.txt").write_text(f"[{ENTRY_POINT_GROUP}]\n{lines}")
    monkeypatch.syspath_prepend(str(tmp_path))


BAD_CLOSE = 14.0


class FailsOnBarParams(StrategyParams):
    bad_close: float = BAD_CLOSE


class FailsOnBar(BaseStrategy[FailsOnBarParams]):
    """A strategy with a bug that shows on the bars closing at ``bad_close`` (a user's plugin, say)."""

    name: ClassVar[str] = "fails_on_bar"
    params_model = FailsOnBarParams

    def on_bar(self, bar: OHLCVBar, insight: InsightEvent | None, ctx: StrategyContext) -> StrategyResult:
        if bar.close == self.params.bad_close:
            raise ZeroDivisionError("division by zero")
        return None, {}


#: ``FailsOnBar`` as an entry point of ``install_plugins``
FAILS_ON_BAR = ("fails_on_bar", f"{__name__}:FailsOnBar")


KILL_CLOSE = 107.0


class KillsOnBarParams(StrategyParams):
    kill_close: float = KILL_CLOSE


class KillsOnBar(BaseStrategy[KillsOnBarParams]):
    """A plugin that kills its whole process on the bars closing at ``kill_close``, as a segfault in a native
    extension or the OOM killer would: no exception to catch, nothing committed. For tests only."""

    name: ClassVar[str] = "kills_on_bar"
    params_model = KillsOnBarParams

    def on_bar(self, bar: OHLCVBar, insight: InsightEvent | None, ctx: StrategyContext) -> StrategyResult:
        if bar.close == self.params.kill_close:
            os._exit(70)
        return None, {}


#: ``KillsOnBar`` as an entry point of ``install_plugins``
KILLS_ON_BAR = ("kills_on_bar", f"{__name__}:KillsOnBar")
