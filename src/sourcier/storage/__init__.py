"""The index on disk: immutable segments (documents, chunks, sentence vectors, dense and
BM25 indexes) listed by generations of a manifest, merged by size, read as snapshots."""

from ..lazy import attach

__getattr__, __dir__, __all__ = attach(
    __name__,
    {
        "Index": ".reader",
        "DocumentInfo": ".reader",
        "Snapshot": ".snapshot",
        "open_live": ".snapshot",
        "DenseIndex": ".dense",
        "BM25Segment": ".bm25",
        "SegmentedBM25": ".bm25",
        "MergePolicy": ".merge",
        "VECTOR_STORES": ".vectors",
    },
)
