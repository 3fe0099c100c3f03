"""Mean-field theory of residual networks (Yang & Schoenholz, NeurIPS 2017, as presented in G. B. Macedo's talk,
IMECC Unicamp, 2020): recurrences, their Monte-Carlo referee, and trainability maps. ``resdyn meanfield curves |
map`` is the command line."""

from resdyn.meanfield.curves import curves
from resdyn.meanfield.simulate import Simulation, simulate
from resdyn.meanfield.theory import Theory, theory

__all__ = ["Simulation", "Theory", "curves", "simulate", "theory"]
