"""Built-in enrichment steps a pipeline adds to ``Pipeline.steps`` (redaction).
Pure functions of an event: no Kafka, Elasticsearch, worker or view imports."""
