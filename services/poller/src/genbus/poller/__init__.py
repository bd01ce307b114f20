"""genbus.poller."""
