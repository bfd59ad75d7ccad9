import type { FirstRunMessages } from './firstRun.en'

const firstRun: FirstRunMessages = {
  trainDemo: '训练演示模型',
  trainDemoHint: '用身份示例数据集教内置的小模型认识自己（CPU 上约两分钟），然后与它对话。',
  started: '演示训练已排队：{name}',
}

export default firstRun
