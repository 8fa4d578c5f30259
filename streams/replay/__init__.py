"""In-process runs of a pipeline without Kafka or Elasticsearch (``logriver replay``, ``parse``,
pipeline tests). Same stages as the worker; never imports the worker, Faust, sinks or views."""
