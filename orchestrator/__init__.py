"""orchestrator: the caller-facing call runner (OrchestratorService, default port 50051)."""
