"""The benchmark scenarios; each `run(ctx)` returns a `ScenarioResult` and writes its plot."""
