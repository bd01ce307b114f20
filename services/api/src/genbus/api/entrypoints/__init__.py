"""How the outside reaches the api: HTTP, event consumers, and the deadline reconciler."""
