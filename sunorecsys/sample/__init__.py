"""The embedded sample catalogue generator: Suno-like records, synthesised music with known damage,
simulated listeners (``catalogue.generate_sample_catalogue``). Nothing in ingest or the pipeline's
library code depends on it; tests, benchmarks and the demo do."""
