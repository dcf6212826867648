"""Benchmarks of batchemu against the physical floor (plain Docker calls) and against moto's server."""
