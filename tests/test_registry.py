"""The registry: unknown names list the valid ones; registering is idempotent for the same entry only."""

import pytest

from resdyn.errors import ConfigError
from resdyn.registry import Registry, UnknownNameError


def builder():
    return "built"


def test_an_unknown_name_lists_the_valid_ones():
    registry = Registry("model")
    registry.add("b", builder)
    registry.add("a", builder)
    with pytest.raises(UnknownNameError, match="unknown model 'c'; valid model names: a, b"):
        registry.get("c")


def test_registering_the_same_entry_twice_is_harmless():
    # what a notebook cell that registers a model does when it is run again
    registry = Registry("model")
    for _ in range(2):
        registry.register("mine", help="my model")(builder)
    assert registry.names() == ["mine"] and registry.get("mine") is builder and registry.help("mine") == "my model"


def test_another_entry_under_a_taken_name_is_refused():
    registry = Registry("model")
    registry.add("mine", builder)
    with pytest.raises(ConfigError, match="model 'mine' is already registered to"):
        registry.add("mine", lambda: "other")
    assert registry.get("mine") is builder
