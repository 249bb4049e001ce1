"""GGUF files: the bounded header reader, what one file is (ModelInfo), the catalog of files on disk, model shape."""
