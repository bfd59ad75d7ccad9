"""Usage accounting and quotas: what each job attempt used (wall time, CPU- and GPU-hours, peak memory,
tokens, cost), what each user stores, and the per-user quotas (defaults from settings, admin overrides)
that job submission and admission enforce. Below jobs, so jobs can ask it; reads jobs' rows directly."""
