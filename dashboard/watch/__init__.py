"""`warren watch`: the console's polls kept running with nobody looking, their findings served as
Prometheus metrics and posted as alerts."""
