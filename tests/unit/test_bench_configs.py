"""The configurations the benchmarks write are valid: a config rule added later must not leave
`make bench` to find out (nothing else runs it)."""

from __future__ import annotations

from pathlib import Path

from benchmarks import channels, inbox, stack
from chalicelib.config.loader import load_config


def test_the_inbox_benchmark_config_is_valid(tmp_path: Path) -> None:
    config = load_config(str(inbox._config(tmp_path / "bench.yaml")))
    assert [t.id for t in config.tenants] == [inbox.TENANT, inbox.LIST_TENANT]


def test_the_channel_and_stack_benchmark_configs_are_valid(tmp_path: Path) -> None:
    assert load_config(str(channels._config(tmp_path / "channels.yaml"))).tenants
    stack._config(tmp_path / "stack.yaml")
    assert load_config(str(tmp_path / "stack.yaml")).tenants
