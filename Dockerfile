# The Logriver image: collector, worker and setup commands (`logriver ...`).
FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY streams ./streams
COPY schemas ./schemas
COPY pipelines ./pipelines
RUN pip install --no-cache-dir .
ENV LOGRIVER_STATE_DIR=/var/lib/logriver/state
ENTRYPOINT ["logriver"]
CMD ["--help"]
