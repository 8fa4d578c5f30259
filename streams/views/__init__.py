"""What users look at: search queries, the live console, the HTML report. Reads indices and
stats; nothing in the engine imports a view (the CLI installs the console on a worker)."""
