"""Network receivers for the Docker log drivers (syslog, GELF, fluentd forward, journald):
protocol framing, stable ids, publishing. Same imports as ``streams.sources``."""
