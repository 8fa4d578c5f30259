"""Collect: the node agent's file tailer and checkpoints, the receivers for the Docker log
drivers, the Python logging handler, Kubernetes metadata; each publishes raw records to Kafka.
Imports framing, transport and ops only: never parse, templates, sinks, windows or the worker."""
