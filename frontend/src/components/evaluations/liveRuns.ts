/**
 * The evaluation page's live view, framework-free: which jobs to follow over the jobs WebSocket, how a
 * followed job's stream moves its run (status, progress, ETA), and when to read the evaluation again.
 *
 * The socket is the live source; the evaluation's GET is read again only when something the stream
 * does not carry may have changed: a followed job ended (totals copied, the pairwise judging job
 * queued), the evaluation is still moving with nothing left to follow (the scheduler's sync has not run
 * yet: a short wait), or a socket failed (a slow poll until it is back).
 */
import type { Evaluation, EvaluationRun } from '@/api/evaluations'
import { ACTIVE_STATUSES, isActive, isFinal, type JobStatus } from '@/api/jobs'
import type { ConnectionState } from '@/lib/jobStream'

import { isMoving } from './listing'

/** Job statuses worth a socket: the job can still move. */
const FOLLOWED: readonly JobStatus[] = ['queued', ...ACTIVE_STATUSES]
/** Socket states that mean no live data now (the stream retries by itself meanwhile). */
const FAILED: readonly ConnectionState[] = ['reconnecting', 'unauthorized', 'not_found', 'closed']

/** Between a job's end and the sync that copies its totals (or queues the judging job). */
export const SETTLE_MS = 2000
/** The fallback while a socket is down. */
export const FALLBACK_MS = 10_000

/** What one followed job's stream says now (null: nothing heard yet). */
export interface LiveJob {
  state: ConnectionState
  status: JobStatus | null
  progress: number | null
  eta_s: number | null
}

const num = (value: unknown): number | null => (typeof value === 'number' && Number.isFinite(value) ? value : null)

/**
 * The jobs to follow: every run's job that can still move, and the pairwise judging job while the
 * evaluation is moving (the evaluation does not carry that job's status).
 */
export function followedJobs(evaluation: Evaluation | null): number[] {
  if (!evaluation) return []
  const ids = evaluation.runs
    .filter((r) => r.job_id !== null && r.job_status !== null && FOLLOWED.includes(r.job_status))
    .map((r) => r.job_id!)
  if (evaluation.judge_job_id !== null && isMoving(evaluation.status)) ids.push(evaluation.judge_job_id)
  return [...new Set(ids)]
}

/** A stream's view of its job: the row's status and progress, with the engine's latest progress event
 * (samples done of all, ETA) over the row's progress. */
export function liveJob(
  state: ConnectionState,
  job: { status: JobStatus; progress?: number | null } | null,
  latest: Record<string, unknown> | null,
): LiveJob {
  const status = job?.status ?? null
  const progress = num(latest?.progress) ?? num(job?.progress)
  // The ETA of the last batch means nothing once the job no longer runs.
  const eta = status !== null && isActive(status) ? num(latest?.eta_s) : null
  return { state, status, progress, eta_s: eta }
}

/** The run as its job's stream shows it (unchanged when its job is not followed or not heard yet). */
export function liveRun(run: EvaluationRun, live: LiveJob | undefined): EvaluationRun {
  if (!live || live.status === null || run.job_id === null) return run
  const succeeded = live.status === 'succeeded'
  return {
    ...run,
    job_status: live.status,
    progress: succeeded ? 1 : (live.progress ?? run.progress),
    eta_s: live.eta_s,
  }
}

/** The evaluation with its runs moved by the streams; its progress is the runs' mean, as the server's. */
export function liveEvaluation(evaluation: Evaluation, jobs: ReadonlyMap<number, LiveJob>): Evaluation {
  const runs = evaluation.runs.map((r) => liveRun(r, r.job_id !== null ? jobs.get(r.job_id) : undefined))
  const changed = runs.some((r, i) => r !== evaluation.runs[i])
  if (!changed) return evaluation
  const progress =
    evaluation.progress === null
      ? null
      : Number((runs.reduce((sum, r) => sum + (r.progress ?? 0), 0) / runs.length).toFixed(4))
  const running = runs.some((r) => r.job_status !== null && isActive(r.job_status))
  // A queued evaluation whose first job started is running (the server's rule: running wins).
  const status = evaluation.status === 'queued' && running ? 'running' : evaluation.status
  return { ...evaluation, runs, progress, status }
}

/**
 * When to read the evaluation again (ms), or null for not at all: nothing while the streams carry it;
 * a short wait while it moves with nothing left to follow; the slow fallback while a socket is down.
 */
export function refetchDelay(evaluation: Evaluation | null, followed: readonly LiveJob[]): number | null {
  if (!evaluation || !isMoving(evaluation.status)) return null
  if (followed.every((j) => j.status !== null && isFinal(j.status))) return SETTLE_MS
  if (followed.some((j) => FAILED.includes(j.state))) return FALLBACK_MS
  return null
}
