"""Install a strategy plugin the way ``pip install`` of a plugin package does, for the real
``importlib.metadata`` entry-point lookup of ``services.strategy.domain.registry``."""

from __future__ import annotations

from pathlib import Path

import pytest

from services.strategy.domain.registry import ENTRY_POINT_GROUP


def install_plugins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, *eps: tuple[str, str]) -> None:
    """A distribution declaring ``eps`` (name, ``module:attr``) in the ``bastion.strategies`` group, in a
    directory put first on ``sys.path`` for the rest of the test."""
    info = tmp_path / "bastion_test_plugin-1.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: bastion-test-plugin\nVersion: 1.0\n")
    lines = "".join(f"{name} = {value}\n" for name, value in eps)
    (info / "entry_points.txt").write_text(f"[{ENTRY_POINT_GROUP}]\n{lines}")
    monkeypatch.syspath_prepend(str(tmp_path))
