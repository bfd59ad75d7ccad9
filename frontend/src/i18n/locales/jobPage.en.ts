// English messages of the job page (live charts, logs, checkpoints, spec, events) and job comparison.
// jobPage.zh-CN.ts must have exactly the same keys (its type enforces it).
const jobPage = {
  title: 'Job',
}

export type JobPageMessages = typeof jobPage
export default jobPage
