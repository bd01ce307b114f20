"""genbus.dispatcher."""
