# The reliability and safety suite (docs/reliability.md): decoys, crash injection, concurrency, degraded and damaged
# filesystems, bad input, security. Figures are recorded with lwkit.figures and printed at the end of the run.
