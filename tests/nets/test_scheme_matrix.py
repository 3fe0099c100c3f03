"""Every scheme x every noise x both field kinds (post-activation basic, pre-activation) on the CIFAR layout."""

import pytest
import torch

from resdyn import build_model
from resdyn.errors import ConfigError
from resdyn.noise import NOISES
from resdyn.schemes import ARCHITECTURES, SCHEMES, Scheme, scheme_name

pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py


def refusal(scheme: str, noise: str | None, preact: bool) -> str | None:
    """Why a combination is meaningless (the error must say it), or None."""
    if scheme == "leapfrog" and not preact:
        # A ReLU after each step cannot be inverted, and leapfrog's point is to be reversible.
        return "reversible only without an activation"
    if scheme == "plain" and noise == "stochastic-depth":
        # A dropped field leaves the skip, and a plain network has none.
        return "stochastic depth drops a field.*no skip"
    return None


@pytest.mark.parametrize("preact", [False, True], ids=["basic", "preact"])
@pytest.mark.parametrize("noise", [None, *NOISES.names()])
@pytest.mark.parametrize("scheme", SCHEMES.names())
def test_every_scheme_noise_and_field_kind_trains_one_step(scheme, noise, preact):
    options = {"depth": 14, "scheme": scheme, "preact": preact, "noise": noise}  # 2 fields a stage: real multistep
    reason = refusal(scheme, noise, preact)
    if reason is not None:
        with pytest.raises(ConfigError, match=reason):
            build_model("resnet", 1, 3, **options)
        return
    torch.manual_seed(0)
    model = build_model("resnet", 1, 3, **options)
    assert isinstance(model.body, SCHEMES.get(scheme)) and isinstance(model.body, Scheme)
    loss = torch.nn.functional.cross_entropy(model(torch.randn(4, 1, 8, 8)), torch.tensor([0, 1, 2, 0]))
    assert torch.isfinite(loss)
    loss.backward()
    grads = {n: p.grad for n, p in model.named_parameters()}
    assert all(torch.isfinite(g).all() for g in grads.values() if g is not None)
    if noise is None:  # stochastic depth may drop a whole field for the batch, which then has no gradient
        assert all(g is not None for g in grads.values()), [n for n, g in grads.items() if g is None]
    assert grads["head.2.weight" if not preact else "head.4.weight"].abs().sum() > 0


@pytest.mark.parametrize("name", ARCHITECTURES.names())
def test_architectures_are_refused_on_the_layout_with_the_models_to_use(name):
    """FractalNet joins columns of conv-BN-ReLU (no residual branch), the ODE block integrates time-dependent
    GroupNorm fields with an adaptive solver, RevNet couples two half-width fields per block: each has its own
    models, which the error names."""
    with pytest.raises(ConfigError, match=f"scheme '{name}' cannot run on residual fields with shortcuts: .*use "):
        build_model("resnet", 1, 3, depth=8, scheme=name)


def test_scheme_name_is_the_registered_scheme_or_architecture_of_a_model():
    """What a run's summary records as its scheme (the report draws the step schemes' stability regions)."""
    with torch.device("meta"):
        names = {n: scheme_name(build_model(n, 1, 10)) for n in ("resnet20", "lm-resnet20", "odenet", "revnet38",
                                                                   "fractalnet20", "frn")}
    assert names == {"resnet20": "euler", "lm-resnet20": "lm", "odenet": "ode", "revnet38": "reversible",
                     "fractalnet20": "fractal", "frn": None}
