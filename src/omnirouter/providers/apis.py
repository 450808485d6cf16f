"""The wire formats a provider may speak: those with a chat adapter (see build_adapters), and those
that serve only operations beyond chat (embeddings, rerank: pipeline/modality.py). A provider speaking
another is not routable."""

CHAT_APIS = frozenset({"openai", "sandbox", "gemini", "anthropic", "bedrock", "azure", "openai-responses"})
ADAPTER_APIS = CHAT_APIS | {"cohere", "voyage", "jina"}
