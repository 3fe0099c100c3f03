"""A recipe's quoted figures against the model it builds: the parameters and Mult-Adds its ``[meta]`` claims.

A recipe that reproduces a row of a paper's table keeps the row's figures in ``[meta]`` beside its test error:

- ``paper_params``: the parameter count, an integer where the source quotes it exactly (the FIUBA replication
  report of Lu et al. 2018: ``273475``), else the text as quoted with its unit (Lu's slides, arXiv:1710.10121:
  ``"0.27M"``), which a count matches within half its last digit;
- ``paper_mult_adds``: Mult-Adds per batch of 128 images, as the replication report quotes them (``"5.22G"``),
  matched alike;
- ``params_difference`` with ``params_note``: where resdyn's model does not reproduce ``paper_params``, its count
  minus the quoted value (exact) and why.

``resdyn models --seed-figures`` prints the comparison; the tests assert it for every recipe.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import torch

from resdyn.analysis.profile import count_parameters, mult_adds
from resdyn.errors import ConfigError

UNITS = {"": 1, "K": 10**3, "M": 10**6, "G": 10**9}
BATCH = 128  # the replication report's tables quote Mult-Adds per batch of 128


@dataclass(frozen=True)
class Quoted:
    """A figure as a paper prints it: ``value`` within ``tolerance`` (half a unit of its last digit; 0 if exact)."""

    text: str
    value: float
    tolerance: float

    @classmethod
    def parse(cls, figure: int | str, key: str) -> Quoted:
        """``273475`` (exact) or ``"0.27M"`` / ``"5.22G"`` (rounded as printed)."""
        if isinstance(figure, int) and not isinstance(figure, bool):
            return cls(f"{figure:,}", float(figure), 0.0)
        match = re.fullmatch(r"(\d+)(?:\.(\d+))?([KMG]?)", str(figure))
        if not isinstance(figure, str) or match is None:
            raise ConfigError(f"[meta] {key} = {figure!r}: expected an exact integer or a quoted figure such as "
                              "\"0.27M\" or \"5.22G\"")
        whole, decimals, unit = match.groups()
        scale = UNITS[unit]
        value = float(f"{whole}.{decimals or 0}") * scale
        return cls(figure, value, 0.5 * scale / 10 ** len(decimals or ""))

    def matches(self, measured: float) -> bool:
        return abs(measured - self.value) <= self.tolerance * (1 + 1e-9)


@dataclass(frozen=True)
class FigureCheck:
    """One recipe's model measured against the figures its ``[meta]`` quotes."""

    params: int
    paper_params: Quoted
    #: the documented count minus quoted value where the model does not reproduce the figure (None: it does)
    documented_difference: int | None
    note: str
    #: Mult-Adds per batch of 128, measured only where the recipe quotes them
    mult_adds: int | None
    paper_mult_adds: Quoted | None

    @property
    def difference(self) -> int:
        return self.params - round(self.paper_params.value)

    @property
    def params_ok(self) -> bool:
        """The quoted count reproduced, or differing by exactly the documented difference."""
        if self.documented_difference is not None:
            return self.difference == self.documented_difference
        return self.paper_params.matches(self.params)

    @property
    def mult_adds_ok(self) -> bool:
        return self.paper_mult_adds is None or (self.mult_adds is not None
                                                and self.paper_mult_adds.matches(self.mult_adds))


def check_figures(model_name: str, model_options: dict[str, Any], in_channels: int, num_classes: int,
                  image_size: tuple[int, int], meta: dict[str, Any]) -> FigureCheck | None:
    """Build the model a recipe names and measure the figures its ``meta`` quotes; None if it quotes none."""
    from resdyn.nets import build_model

    if "paper_params" not in meta:
        return None
    paper_params = Quoted.parse(meta["paper_params"], "paper_params")
    documented = meta.get("params_difference")
    if documented is not None and not (isinstance(documented, int) and meta.get("params_note")):
        raise ConfigError("[meta] params_difference must be an integer (resdyn's count minus paper_params) and come "
                          "with a params_note saying why")
    paper_mult_adds = (Quoted.parse(meta["paper_mult_adds"], "paper_mult_adds") if "paper_mult_adds" in meta
                       else None)
    # Counting needs shapes, not values: on the meta device a 68M-parameter net builds at once, and FlopCounterMode
    # counts a forward pass without computing it.
    with torch.device("meta"):
        model = build_model(model_name, in_channels, num_classes, **model_options)
    macs = None if paper_mult_adds is None else mult_adds(model, (in_channels, *image_size)) * BATCH
    return FigureCheck(count_parameters(model), paper_params, documented, str(meta.get("params_note", "")), macs,
                       paper_mult_adds)


def check_recipe(name: str) -> FigureCheck | None:
    """:func:`check_figures` for the shipped recipe ``name``, with its dataset's channels, classes and size."""
    from resdyn.data import DATASETS
    from resdyn.recipes import recipe_path
    from resdyn.train.config import load_config

    config = load_config(recipe_path(name))
    info = DATASETS.get(config.data.name)().info
    return check_figures(config.model.name, dict(config.model.options), info.in_channels, info.num_classes,
                         info.image_size, config.meta)
