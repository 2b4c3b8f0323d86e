"""The pieces of `make scale-check` (bench/scale_check.py): one module per check it performs."""
