"""asv benchmarks of pevm (see benchmarks/engines.py)."""
