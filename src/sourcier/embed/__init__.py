"""Embedding: the Embedder protocol, the bundled e5 model and the query encoder."""
