import type { ModelScoresMessages } from './modelScores.en'

const modelScores: ModelScoresMessages = {
  title: '评测分数',
  titleOf: 'v{n} 的评测分数',
  intro: '此版本参与过的每次评测，以及与同一评测中基座模型相比的变化。',
  empty: '此版本尚未评测。',
  evaluate: '评测此模型',
  loadFailed: '无法加载分数：{error}',
  col: {
    evaluation: '评测',
    dataset: '测试集',
    scores: '分数',
    base: '与基座模型相比',
    date: '日期',
  },
  datasetVersion: '{name} · v{n}',
  noDataset: '已删除的数据集',
  noBase: '此评测中没有基座模型',
  baseIs: '对比 {model}',
  better: '优于基座模型',
  worse: '差于基座模型',
  same: '与基座模型相同',
  lowerBetter: '越低越好',
  actions: {
    evaluate: '评测',
    compare: '对比（{n}）',
    compareHint: '选择 2 到 8 个模型，在同一测试集上对比',
    selected: '已选 {n} 个',
  },
}

export default modelScores
