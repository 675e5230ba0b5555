"""Insight into the network: the supervisors' dashboard figures and a synthetic history.

``queries`` computes every figure with SQL aggregation in the database,
``suppression`` hides small cells, ``synthetic`` makes a realistic history
for demos and benchmarks (``bot insight generate``).
"""
