"""genbus.cli: the `genbus` command, a client of the dispatcher's admin HTTP API."""
