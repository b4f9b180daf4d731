"""analytics_svc: call events and reports (AnalyticsService, default port 50056)."""
