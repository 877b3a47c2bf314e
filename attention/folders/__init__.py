"""What every model family reads from a Hugging Face folder: its files (every failure a
ModelFileError naming the file, never its path), safetensors headers checked before any tensor
is read, and the weights, single-file or sharded, read one tensor at a time."""
