"""Built-in enrichment steps a pipeline adds to ``Pipeline.steps``: redaction (``redact.py``) and
extraction with grok, dissect, regex or key/value over a field (``extract.py``).
Pure functions of an event: no Kafka, Elasticsearch, worker or view imports."""
