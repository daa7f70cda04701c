"""The kernel every stage stands on: records (digests, JSON), atomic writes, the content cache,
progress, Ctrl-C handling. Imports no stage; stdlib only (rich lazily, for progress bars)."""
