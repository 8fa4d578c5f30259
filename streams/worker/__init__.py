"""The Faust worker: app assembly, the structure agent, sinks and timers wired together.
The only package that composes every stage; nothing in the engine imports it, and it imports no view."""
