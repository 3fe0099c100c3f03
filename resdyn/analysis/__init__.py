"""Measuring models and runs: parameters, Mult-Adds, tables."""
