"""The pieces of the soak (`python -m bench.soak`, docs/robustness.md): one module per concern."""
