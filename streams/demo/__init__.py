"""The demo and its helpers: a generator of realistic container logs and drivers for the whole
chain (worker process, one-shot collection, waits). Used by ``logriver demo``, tests, benchmarks; never by the engine."""
