"""How work runs: settings, the admission gate, the memory budget, the module cache, micro-batching,
streaming, metrics, and the worker's shutdown (SIGTERM: drain, stop accepting)."""
