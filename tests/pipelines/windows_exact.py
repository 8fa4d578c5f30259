"""A test pipeline: windows with a generous allowed lateness, so every event of a finite
historical input counts (windows close on the idle wall-clock watermark), no detectors."""

from streams.parse import Parser
from streams.pipeline import Pipeline
from streams.windows import WindowSpec

pipeline = Pipeline(
    name="winexact",
    parser=Parser(),
    windows=[
        WindowSpec("tumbling", size=60, allowed_lateness=3600,
                   key_fields=("kubernetes.namespace", "log.level")),
        WindowSpec("hopping", size=300, step=60, allowed_lateness=3600,
                   key_fields=("kubernetes.namespace",)),
    ],
    detectors=[],
    partitions=4,
)
