"""Training: typed config, optimisers and schedules, and the loop that writes run folders."""

from resdyn.train.config import Config, ConfigError, apply_overrides, dump_config, load_config
from resdyn.train.loop import NonFiniteLossError, train

__all__ = ["Config", "ConfigError", "NonFiniteLossError", "apply_overrides", "dump_config", "load_config", "train"]
