"""How work runs: settings, the admission gate and memory budget, caches, metrics."""
