"""Speculative decoding knowledge: the method table, which files can draft for a model, live health, measured choices."""
