from __future__ import annotations

import pytest

from services.strategy.__main__ import worker_name
from services.strategy.domain.registry import StrategyConfigError


def test_the_worker_name_comes_from_the_environment_first() -> None:
    assert worker_name({"BASTION_STRATEGY_WORKER": "2"}, hostname="box") == "2"


def test_without_a_name_the_host_name_is_used_made_safe() -> None:
    assert worker_name({}, hostname="3f2a9c1b7d4e") == "3f2a9c1b7d4e"  # a docker container id
    assert worker_name({"BASTION_STRATEGY_WORKER": " "}, hostname="node.local") == "node-local"


def test_a_name_that_cannot_be_a_key_or_file_name_is_refused() -> None:
    with pytest.raises(StrategyConfigError, match="BASTION_STRATEGY_WORKER"):
        worker_name({"BASTION_STRATEGY_WORKER": "a.b"}, hostname="x")
