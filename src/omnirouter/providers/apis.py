"""The wire formats that have an adapter (see build_adapters); a provider speaking another is not routable."""

ADAPTER_APIS = frozenset({"openai", "sandbox", "gemini", "anthropic", "bedrock", "azure", "openai-responses"})
