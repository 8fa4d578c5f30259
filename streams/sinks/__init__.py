"""Where results go: the Elasticsearch sink (bulk, idempotent ids, retries, dead letters) and a
worker's outputs (sink + output topics). Imports transport and ops only: no stage, no worker."""
