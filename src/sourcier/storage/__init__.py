"""The index on disk: segments, dense and BM25 indexes, merges, generations."""
