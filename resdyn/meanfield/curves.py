"""Theory and simulation side by side, layer by layer: the content of ``curves.json``."""

from __future__ import annotations

from typing import Any

import numpy as np

from resdyn.meanfield.simulate import simulate
from resdyn.meanfield.theory import TANH_Q_MAX, ActivationName, Net, Theory, theory


def nonfinite_note(predicted: Theory, activation: str, sigma_w2: float, sigma_b2: float) -> str | None:
    """One sentence saying which quantities of ``predicted`` are not finite from which layer, and why; ``None``
    when all are finite."""
    bad = predicted.first_nonfinite()
    if not bad:
        return None
    parts = [f"{name} from layer {first}" for name, first in sorted(bad.items(), key=lambda kv: kv[1])
             if name != "chi"]
    if "chi" in bad:
        log_r = float(predicted.log_R)
        parts.append(f"chi = χ^l/χ^L below layer {bad['chi']}" + (
            f" (log R = {log_r:.6g}, a sum of per-layer logs, is finite)" if np.isfinite(log_r) else ""))
    with np.errstate(over="ignore", invalid="ignore"):
        q = sigma_w2 * predicted.p[:-1] + sigma_b2  # q^l, the pre-activation variance of layer l = 1..depth
    if activation == "tanh" and np.any(~(q <= TANH_Q_MAX)):
        layer = int(np.argmax(~(q <= TANH_Q_MAX))) + 1
        why = (f"tanh's correlation integral is evaluated for q <= {TANH_Q_MAX:g} only, and q^{layer} = "
               f"{float(q[layer - 1]):.3g}")
    else:
        why = "the theory overflows float64"
    return f"{why}: {', '.join(parts)}; those values are null"


def curves(net: Net, activation: ActivationName, depth: int, *, width: int, samples: int, seed: int,
           sigma_w2: float, sigma_v2: float = 1.0, sigma_a2: float = 0.0, sigma_b2: float = 0.0,
           alpha: float | None = None, p0: float = 1.0, e0: float = 0.5) -> dict[str, Any]:
    """``{"settings", "layers", "theory": {p, gamma, e, s, chi, log_R}, "simulation": {name: {mean, std}}}``;
    ``samples = 0`` leaves the simulation out.

    Where the theory is not finite, ``"theory_nonfinite"`` maps each such quantity to its first non-finite
    layer (``chi``: the layer below which it is not finite) and ``"theory_note"`` says why in a sentence;
    ``"simulation_note"`` likewise where a simulated net overflows. The values themselves stay NaN / inf
    here; ``resdyn.meanfield.folders`` writes them as JSON null.
    """
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
    note = nonfinite_note(predicted, activation, sigma_w2, sigma_b2)
    if note is not None:
        data["theory_nonfinite"] = predicted.first_nonfinite()
        data["theory_note"] = note
    if samples > 0:
        with np.errstate(over="ignore", invalid="ignore"):
            simulated = simulate(net, activation, depth, width=width, samples=samples, seed=seed, **sigmas)
            data["simulation"] = simulated.summary()
        bad = ~np.isfinite(simulated.p).all(0) | ~np.isfinite(simulated.s).all(0)
        if bad.any():
            data["simulation_note"] = (f"the simulated nets overflow (their products are float32) from layer "
                                       f"{int(np.argmax(bad))}; non-finite values are null")
    return data
