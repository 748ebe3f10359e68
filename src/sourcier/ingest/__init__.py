"""Ingestion: files -> clean documents -> chunks with exact offsets.

:func:`discover` walks folders, :func:`load_document` reads one file with the reader of
its format (:mod:`.readers`), cleans it (:mod:`.cleaning`) and finds its title
(:mod:`.titles`), date (:mod:`.dates`) and language (:mod:`.language`);
:func:`chunk_with_sentences` cuts it into chunks of whole sentences (:mod:`.chunking`).
"""

from ..lazy import attach

__getattr__, __dir__, __all__ = attach(
    __name__,
    {
        "discover": ".loaders",
        "load_document": ".loaders",
        "document_id": ".loaders",
        "document_from_record": ".loaders",
        "READERS": ".readers",
        "SUPPORTED_EXTENSIONS": ".readers",
        "chunk_document": ".chunking",
        "chunk_with_sentences": ".chunking",
        "sentence_spans": ".chunking",
        "clean_text": ".cleaning",
        "detect_language": ".language",
    },
)
