"""Operations: the nodes that run engines (local host, Ray nodes), their telemetry, health and alerts,
drain and migration of jobs, and the operators' dashboard. Uses jobs (a drain stops and re-queues
jobs through the jobs lifecycle) and usage; placement itself stays in `services.jobs.admission`, which
reads the `nodes` table (node statuses are computed here, in `node_status`)."""
