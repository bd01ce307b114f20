"""genbus.runtime."""
