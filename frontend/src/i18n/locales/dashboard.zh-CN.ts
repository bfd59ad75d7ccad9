import type { DashboardMessages } from './dashboard.en'

const dashboard: DashboardMessages = {
  welcome: '欢迎，{name}',
  intro: '一眼看到您的训练任务、数据集和模型，以及这台机器有多忙。',
  viewAll: '查看全部',
  loadFailed: '此面板加载失败：{reason}',
  firstRun: {
    title: '训练您的第一个模型',
    body: '一键用小型示例数据集微调内置的小模型：您会看到完整的一次训练（包括实时损失和检查点），并可以与结果对话。',
    ownJob: '或者自己配置任务',
  },
  jobs: {
    title: '我最近的任务',
    empty: '还没有训练任务。选择一个基础模型和一个数据集即可开始。',
    newJob: '新建任务',
  },
  queue: {
    title: '队列',
    waiting: '等待中',
    running: '运行中',
    scopeOwn: '仅统计您自己的任务。',
    scopeAll: '统计所有用户的任务。',
    position: '您的下一个任务在队列中排第 {position} 位。',
    noneWaiting: '您没有等待中的任务。',
    open: '打开队列',
  },
  datasets: {
    title: '数据集',
    empty: '还没有数据集。上传 JSON、JSONL、CSV、Parquet 或文本文件用于训练。',
    upload: '上传数据集',
    rows: '{count} 行',
  },
  models: {
    title: '模型',
    empty: '还没有模型。从 Hugging Face Hub 或本地文件夹添加基础模型，或者训练一个。',
    add: '添加模型',
    versions: 'v{version}',
  },
  host: {
    title: '这台机器',
    cpu: 'CPU（{count} 核）',
    memory: '内存',
    disk: '数据盘可用空间',
    gpus: 'GPU',
    gpu: 'GPU {index}',
    noGpu: '未发现 NVIDIA GPU：任务将在 CPU 上训练。',
    usedOf: '已用 {used} / 共 {total}',
    freeOf: '可用 {free} / 共 {total}',
  },
}

export default dashboard
