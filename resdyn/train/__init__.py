"""Training: typed config, optimisers and schedules, the loop that writes run folders, and ``fit``/``load_run`` for
a model object (the notebook's way in)."""

from resdyn.train.config import Config, ConfigError, apply_overrides, dump_config, load_config
from resdyn.train.loop import NonFiniteLossError, Result, train

__all__ = ["Config", "ConfigError", "NonFiniteLossError", "Result", "apply_overrides", "dump_config", "load_config",
           "train"]
