"""The pieces of `make scale-check` (bench/scale_check.py): the topology it starts (standby,
pooler, balancer, fleet) and one module per check it performs."""
