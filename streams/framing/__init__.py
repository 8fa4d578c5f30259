"""Container framing: the runtimes' line formats (docker json-file, CRI) with partial-line
reassembly, and multiline merging of stack traces. Imports transport only; never parse, worker or sinks."""
