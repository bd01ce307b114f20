"""genbus.api."""
