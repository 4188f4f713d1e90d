"""The engine: the objective's terms, the objective evaluated whole or tiled, and the run around it."""
