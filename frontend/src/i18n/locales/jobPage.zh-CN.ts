import type { JobPageMessages } from './jobPage.en'

const jobPage: JobPageMessages = {
  title: '任务',
}

export default jobPage
