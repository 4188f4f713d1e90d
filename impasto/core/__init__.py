"""The engine: the objective's terms, the objective evaluated whole or tiled, and one transfer around it.

Layers below: :mod:`impasto.config` (the options), :mod:`impasto.net` (the network).
"""
