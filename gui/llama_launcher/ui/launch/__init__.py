"""The Launch setup tab, in boxes: speculative decoding, tune, context and memory, advanced, network, preview."""
