"""Side-by-side benchmarks: direct upstream, omnirouter and LiteLLM proxy (issue 3). See README.md."""
