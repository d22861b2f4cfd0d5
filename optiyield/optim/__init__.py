"""Optimizers: minimax, one-sided l1 yield optimization, staged BFGS, baselines; gradient providers."""
