import type { JobsMessages } from './jobs.en'

const jobs: JobsMessages = {
  title: '训练任务',
}

export default jobs
