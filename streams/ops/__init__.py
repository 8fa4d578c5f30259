"""How Logriver runs: settings, credentials, its own metrics and health, log filtering,
process tuning. Imports nothing but transport; never a stage, the worker or a view."""
