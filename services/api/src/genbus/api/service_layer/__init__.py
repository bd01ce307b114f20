"""The api's use cases: handlers run inside a unit of work."""
