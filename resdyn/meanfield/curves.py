"""Theory and simulation side by side, layer by layer: the content of ``curves.json``."""

from __future__ import annotations

from typing import Any

from resdyn.meanfield.simulate import simulate
from resdyn.meanfield.theory import ActivationName, Net, theory


def curves(net: Net, activation: ActivationName, depth: int, *, width: int, samples: int, seed: int,
           sigma_w2: float, sigma_v2: float = 1.0, sigma_a2: float = 0.0, sigma_b2: float = 0.0,
           alpha: float | None = None, p0: float = 1.0, e0: float = 0.5) -> dict[str, Any]:
    """``{"settings", "layers", "theory": {p, gamma, e, s, chi, log_R}, "simulation": {name: {mean, std}}}``;
    ``samples = 0`` leaves the simulation out."""
    sigmas = {"sigma_w2": sigma_w2, "sigma_v2": sigma_v2, "sigma_a2": sigma_a2, "sigma_b2": sigma_b2,
              "alpha": alpha, "p0": p0, "e0": e0}
    predicted = theory(net, activation, depth, **sigmas)
    data: dict[str, Any] = {
        "settings": {"net": net, "activation": activation, "depth": depth, "width": width, "samples": samples,
                     "seed": seed, **sigmas},
        "layers": list(range(depth + 1)),
        "theory": {name: getattr(predicted, name).tolist() for name in ("p", "gamma", "e", "s", "chi")}
        | {"log_R": float(predicted.log_R)},
    }
    if samples > 0:
        data["simulation"] = simulate(net, activation, depth, width=width, samples=samples, seed=seed,
                                      **sigmas).summary()
    return data
