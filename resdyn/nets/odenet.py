"""The ODENet of F. Gładzik's engineering thesis (AGH Kraków 2019) on Chen et al. 2018's neural ODEs, and its
like-for-like ResNet baseline (torchdiffeq ``examples/odenet_mnist.py``).

Both networks share three segments and differ only in the feature segment (Gładzik 2019, sec. 4.1):

    downsampling  conv3x3(C_in -> 64, no padding), then twice [GN-ReLU-conv4x4 stride 2, padding 1]
    feature       ODENet: ``blocks`` ODE blocks, each ``z <- z + ∫_0^{t1} f(t, z) dt`` with f a TimeConvField
                  ResNet: ``blocks`` pre-activation residual blocks ``x <- x + f(x)`` (GroupNorm), forward Euler
    classifier    GN-ReLU, global average pool, linear

A 28x28 image becomes a 64x6x6 state. For 1-channel, 10-class input the parameters are:

    downsampling  640 + 128 + 65,600 + 128 + 65,600                  = 132,096
    ODE field     3 GN x 128 + 2 x (65 * 64 * 9 + 64) (time channel)  =  75,392
    residual      2 GN x 128 + 2 x 64 * 64 * 9 (no bias)              =  73,984
    classifier    128 + 64 * 10 + 10                                  =     778

    ODENet          132,096 + 75,392 + 778           = 208,266   (Gładzik 2019, Figs. 5.1-5.3)
    ODENet, 2 blocks                                 = 283,658   (Fig. 5.4)
    ResNet, k blocks 132,096 + k * 73,984 + 778     = 280,842 / 428,810 / 724,746 for k = 2 / 4 / 8 (Fig. 5.3)

(3 input channels add 1,152; 100 classes add 5,850: the thesis's 209,418 and 215,268 for CIFAR-10/100.)
Weights keep PyTorch's default initialisation, as the reference code does.
"""

from __future__ import annotations

import dataclasses
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


# -- the registered families: strings and option tables stop here --------------------------------------------


@dataclass(frozen=True, kw_only=True)
class ODENetOptions(Solver):
    """Gładzik 2019's ODENet: the solver's options (:class:`Solver`: dopri5 at rtol = atol = 1e-3 by default) and
    the network's.

    Deliberately without the toolkit options of the convolutional families (:class:`~resdyn.nets.base.Toolkit`):
    dropout would make the field random, which an adaptive solver's error control cannot integrate; BatchNorm would
    mix the solver's evaluations (its GroupNorm is the reason it works); and it keeps PyTorch's initialisation, as
    the reference code (torchdiffeq ``examples/odenet_mnist.py``) does.
    """

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
    #: the fields' activation: relu (Gładzik 2019), or any of resdyn.fields.ACTIVATIONS; a smooth one has adjoint
    #: gradients the tolerances control (softplus, tanh, silu measured: README, ODENet field activation)
    activation: Activation = "relu"

    def solver(self) -> Solver:
        """The :class:`Solver` part of these options."""
        return Solver(**{f.name: getattr(self, f.name) for f in dataclasses.fields(Solver)})


def odenet(o: ODENetOptions, in_channels: int, num_classes: int) -> Network:
    """Downsampling -> ``o.blocks`` ODE blocks over ``width + augment`` channels -> classifier.

    With ``augment = p`` the ``width``-channel state gets ``p`` zero channels before the first block (augmented
    neural ODEs, Dupont et al. 2019); the fields and the classifier then work on ``width + p`` channels.
    ``activation`` makes the fields' nonlinearity (:class:`TimeConvField`); the downsampling and classifier keep
    ReLU, which exact backprop differentiates without a tolerance.
    """
    if o.blocks < 1:
        raise ConfigError(f"an ODENet needs at least one ODE block, got blocks={o.blocks}")
    channels = o.width + o.augment
    fields = [TimeConvField(channels, ACTIVATIONS[o.activation]) for _ in range(o.blocks)]
    body = ODE(fields, o.solver(), o.t1, Regularisation(o.kinetic, o.jacobian), o.augment)
    return Network(downsampling(in_channels, o.width), body, classifier(channels, num_classes))


@dataclass(frozen=True)
class ODEResNetOptions:
    """Gładzik 2019's ResNet baseline (without the toolkit options, as the ODENet it is compared with)."""

    #: pre-activation GroupNorm residual blocks (Gładzik 2019: 2, 4, 8)
    blocks: int = 4
    #: channels of the state after downsampling
    width: int = WIDTH
    #: the residual blocks' activation: relu (Gładzik 2019), or the one an ODENet under comparison uses
    activation: Activation = "relu"


def odenet_resnet(o: ODEResNetOptions, in_channels: int, num_classes: int) -> Network:
    """Downsampling -> ``o.blocks`` pre-activation GroupNorm residual blocks (forward Euler) -> classifier, the
    ODENet's segments; ``activation`` makes the blocks' nonlinearity (the downsampling and classifier keep ReLU,
    as the ODENet's)."""
    if o.blocks < 1:
        raise ConfigError(f"the ResNet baseline needs at least one residual block, got blocks={o.blocks}")
    fields = [PreActGroupNormField(o.width, ACTIVATIONS[o.activation]) for _ in range(o.blocks)]
    body = Euler(fields, [nn.Identity() for _ in fields])
    return Network(downsampling(in_channels, o.width), body, classifier(o.width, num_classes))


register_family("odenet", ODENetOptions, odenet,
                "ODENet of Gładzik 2019 (Chen et al. 2018): downsampling, ODE block(s), classifier")
register_family("odenet-resnet", ODEResNetOptions, odenet_resnet,
                "Gładzik 2019's ResNet baseline: the ODENet's segments around `blocks` pre-activation GroupNorm "
                "residual blocks (default 4)")
