"""Small real jobs for trying the studio and for tests (no data, no GPU, seconds on a CPU): see :mod:`.jobs`."""
