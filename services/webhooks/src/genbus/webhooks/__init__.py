"""genbus webhooks service: signed deliveries of generation events to registered endpoints."""
