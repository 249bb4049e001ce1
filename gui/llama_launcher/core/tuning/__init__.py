"""Measuring speculative settings on this machine: bench, tune, and the stored results."""
