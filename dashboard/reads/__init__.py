"""Reading and judging: what the broker holds, put together for a person (the tenant overview,
consumer load, nodes, one queue, peek, history) and the flags that say what needs a look."""
