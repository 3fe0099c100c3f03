"""Seed 004's ODENet and its like-for-like ResNet baseline (Chen et al. 2018; torchdiffeq ``examples/odenet_mnist.py``).

Both networks share three segments and differ only in the feature segment (seed 004, sec. 4.1):

    downsampling  conv3x3(C_in -> 64, no padding), then twice [GN-ReLU-conv4x4 stride 2, padding 1]
    feature       ODENet: ``blocks`` ODE blocks, each ``z <- z + ∫_0^{t1} f(t, z) dt`` with f a TimeConvField
                  ResNet: ``blocks`` pre-activation residual blocks ``x <- x + f(x)`` (GroupNorm), forward Euler
    classifier    GN-ReLU, global average pool, linear

A 28x28 image becomes a 64x6x6 state. For 1-channel, 10-class input the parameters are:

    downsampling  640 + 128 + 65,600 + 128 + 65,600                  = 132,096
    ODE field     3 GN x 128 + 2 x (65 * 64 * 9 + 64) (time channel)  =  75,392
    residual      2 GN x 128 + 2 x 64 * 64 * 9 (no bias)              =  73,984
    classifier    128 + 64 * 10 + 10                                  =     778

    ODENet          132,096 + 75,392 + 778           = 208,266   (seed 004, Figs. 5.1-5.3)
    ODENet, 2 blocks                                 = 283,658   (Fig. 5.4)
    ResNet, k blocks 132,096 + k * 73,984 + 778     = 280,842 / 428,810 / 724,746 for k = 2 / 4 / 8 (Fig. 5.3)

(3 input channels add 1,152; 100 classes add 5,850: the seed's 209,418 and 215,268 for CIFAR-10/100.)
Weights keep PyTorch's default initialisation, as the reference code does.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass

from torch import nn

from resdyn.errors import ConfigError
from resdyn.fields import ACTIVATIONS, Activation, PreActGroupNormField, TimeConvField, group_norm
from resdyn.nets.base import Network, register_family
from resdyn.schemes import Euler
from resdyn.schemes.ode import ODE, Regularisation, Solver

WIDTH = 64


def downsampling(in_channels: int, width: int = WIDTH) -> nn.Sequential:
    """conv3x3 (no padding) then two [GN-ReLU-conv4x4 stride 2]: 28x28 -> 26x26 -> 13x13 -> 6x6."""
    return nn.Sequential(
        nn.Conv2d(in_channels, width, 3),
        group_norm(width),
        nn.ReLU(inplace=True),
        nn.Conv2d(width, width, 4, stride=2, padding=1),
        group_norm(width),
        nn.ReLU(inplace=True),
        nn.Conv2d(width, width, 4, stride=2, padding=1),
    )


def classifier(channels: int, num_classes: int) -> nn.Sequential:
    """GN-ReLU, global average pool, linear: the state's last norm and activation, then the class scores."""
    return nn.Sequential(
        group_norm(channels),
        nn.ReLU(inplace=True),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(channels, num_classes),
    )


def seed_odenet(
    *,
    in_channels: int = 1,
    num_classes: int = 10,
    solver: Solver | None = None,
    t1: float = 1.0,
    regularisation: Regularisation | None = None,
    blocks: int = 1,
    augment: int = 0,
    width: int = WIDTH,
    activation: Callable[[], nn.Module] = ACTIVATIONS["relu"],
) -> Network:
    """Downsampling -> ``blocks`` ODE blocks over ``width + augment`` channels -> classifier.

    With ``augment = p`` the 64-channel state gets ``p`` zero channels before the first block (augmented neural
    ODEs, Dupont et al. 2019); the fields and the classifier then work on ``64 + p`` channels. ``activation`` makes
    the fields' nonlinearity (:class:`TimeConvField`); the downsampling and classifier keep ReLU, which exact
    backprop differentiates without a tolerance.
    """
    if blocks < 1:
        raise ConfigError(f"an ODENet needs at least one ODE block, got blocks={blocks}")
    channels = width + augment
    body = ODE([TimeConvField(channels, activation) for _ in range(blocks)], solver, t1, regularisation, augment)
    return Network(downsampling(in_channels, width), body, classifier(channels, num_classes))


def seed_resnet(*, in_channels: int = 1, num_classes: int = 10, blocks: int = 4, width: int = WIDTH,
                activation: Callable[[], nn.Module] = ACTIVATIONS["relu"]) -> Network:
    """Downsampling -> ``blocks`` pre-activation GroupNorm residual blocks (forward Euler) -> classifier;
    ``activation`` makes the blocks' nonlinearity (the downsampling and classifier keep ReLU, as the ODENet's)."""
    if blocks < 1:
        raise ConfigError(f"the ResNet baseline needs at least one residual block, got blocks={blocks}")
    fields = [PreActGroupNormField(width, activation) for _ in range(blocks)]
    body = Euler(fields, [nn.Identity() for _ in fields])
    return Network(downsampling(in_channels, width), body, classifier(width, num_classes))


# -- the registered families: strings and option tables stop here --------------------------------------------


@dataclass(frozen=True, kw_only=True)
class ODENetOptions(Solver):
    """Seed 004's ODENet: the solver's options (:class:`Solver`: dopri5 at rtol = atol = 1e-3 by default) and the
    network's."""

    #: the end of the integration interval [0, t1]
    t1: float = 1.0
    #: ODE blocks in sequence
    blocks: int = 1
    #: zero channels appended to the state (augmented neural ODEs, Dupont et al. 2019)
    augment: int = 0
    #: weight of the kinetic-energy penalty (Finlay et al. 2020)
    kinetic: float = 0.0
    #: weight of the Jacobian Frobenius-norm penalty (Finlay et al. 2020)
    jacobian: float = 0.0
    #: channels of the state after downsampling
    width: int = WIDTH
    #: the fields' activation: relu (seed 004), or a smooth one (softplus, tanh, silu), whose adjoint gradients
    #: the tolerances control (README: ODENet field activation)
    activation: Activation = "relu"

    def solver(self) -> Solver:
        """The :class:`Solver` part of these options."""
        return Solver(**{f.name: getattr(self, f.name) for f in dataclasses.fields(Solver)})


def odenet(o: ODENetOptions, in_channels: int, num_classes: int) -> Network:
    """Seed 004's ODENet."""
    return seed_odenet(in_channels=in_channels, num_classes=num_classes, solver=o.solver(), t1=o.t1,
                       regularisation=Regularisation(o.kinetic, o.jacobian), blocks=o.blocks, augment=o.augment,
                       width=o.width, activation=ACTIVATIONS[o.activation])


@dataclass(frozen=True)
class ODEResNetOptions:
    """Seed 004's ResNet baseline."""

    #: pre-activation GroupNorm residual blocks (the seed: 2, 4, 8)
    blocks: int = 4
    #: channels of the state after downsampling
    width: int = WIDTH
    #: the residual blocks' activation: relu (seed 004), or the smooth one an ODENet under comparison uses
    activation: Activation = "relu"


def odenet_resnet(o: ODEResNetOptions, in_channels: int, num_classes: int) -> Network:
    """Seed 004's ResNet baseline with the ODENet's segments."""
    return seed_resnet(in_channels=in_channels, num_classes=num_classes, blocks=o.blocks, width=o.width,
                       activation=ACTIVATIONS[o.activation])


register_family("odenet", ODENetOptions, odenet,
                "ODENet of seed 004 (Chen et al. 2018): downsampling, ODE block(s), classifier")
register_family("odenet-resnet", ODEResNetOptions, odenet_resnet,
                "seed 004's ResNet baseline: the ODENet's segments around `blocks` pre-activation GroupNorm "
                "residual blocks (default 4)")
