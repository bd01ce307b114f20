"""An example subscriber: follows `GenerationCompleted` with a durable consumer of its own and
records one completion notice per event, exactly once, across crashes and redeliveries."""
