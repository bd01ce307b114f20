"""`python -m genbus.api` / `genbus-api`: serve (default), migrate, manage API keys."""

from genbus.api.entrypoints.cli import MIGRATIONS, main

__all__ = ["MIGRATIONS", "main"]

if __name__ == "__main__":
    main()
