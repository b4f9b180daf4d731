"""Engines of llm_svc, one module each: ``banking`` (embedded default) and ``vllm`` (production)."""
