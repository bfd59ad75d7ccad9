// English messages of the jobs list, queue board, new-job form, templates and notifications.
// jobs.zh-CN.ts must have exactly the same keys (its type enforces it).
const jobs = {
  title: 'Training jobs',
}

export type JobsMessages = typeof jobs
export default jobs
