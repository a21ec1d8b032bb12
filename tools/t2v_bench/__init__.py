"""Benchmarks of issue 7 (streaming finalize, cold start, orchestration cost): `make bench`."""
