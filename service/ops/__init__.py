"""Cross-cutting operations: JSON logs, Prometheus metrics, request ids, health, Swagger UI."""
