"""The api's adapters: Postgres tables and repository, and the provider catalog."""
