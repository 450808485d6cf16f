"""Upstream handlers of `POST /rerank` (pipeline/modality.py), by provider `api`: Cohere's v2 API
(cohere.py), Jina's (jina.py; also what vLLM, Infinity and TEI-style servers speak), and the offline
sandbox (sandbox.py). Each returns a `Ranking` (ranking.py)."""
