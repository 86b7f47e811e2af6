"""Health and metrics: what operators, Prometheus and Kubernetes ask the API."""
