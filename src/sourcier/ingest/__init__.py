"""Ingestion: files -> clean documents -> chunks with exact offsets."""
