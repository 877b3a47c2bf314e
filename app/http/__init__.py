"""The HTTP edge: request and answer models, errors, encodings, keys, middleware."""
