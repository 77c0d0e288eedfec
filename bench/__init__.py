"""The benchmarks `make bench` runs: each module prints its figures beside a baseline measured in
the same run."""
