//! Benchmarks only: see `benches/` for criterion micro-benches and `compare.py` for the
//! side-by-side run against wrk and oha.
