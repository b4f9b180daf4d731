"""llm_svc: streaming chat generation (LlmService, default port 50054)."""
