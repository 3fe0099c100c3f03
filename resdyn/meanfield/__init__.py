"""Mean-field theory of residual networks (Yang & Schoenholz, NeurIPS 2017, as presented in G. B. Macedo's talk,
IMECC Unicamp, 2020): recurrences, their Monte-Carlo referee, and trainability maps; and the plain feed-forward
nets they are contrasted with (Poole et al. 2016, Schoenholz et al. 2017: ``theory("ffn", ...)``,
:mod:`resdyn.meanfield.feedforward`). ``resdyn meanfield curves | map`` is the command line."""

from resdyn.meanfield.curves import curves
from resdyn.meanfield.feedforward import fixed_point, order_to_chaos, trainable_depth
from resdyn.meanfield.simulate import Simulation, simulate
from resdyn.meanfield.theory import Theory, theory

__all__ = ["Simulation", "Theory", "curves", "fixed_point", "order_to_chaos", "simulate", "theory",
           "trainable_depth"]
