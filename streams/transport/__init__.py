"""Transport and state: the Kafka client and topics, the raw record format, dead letters,
the partitioner and changelog-backed state. Imports no stage (sources, parse, windows, worker)."""
