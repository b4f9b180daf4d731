"""cache_svc: the semantic answer cache (CacheService, default port 50055)."""
