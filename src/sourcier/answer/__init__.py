"""Answering: the question, retrieval, the refusal gate, answerers and the verifier."""
