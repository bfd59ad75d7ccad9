// English messages of the model registry's evaluation bits: the version's scores and the
// Evaluate / Compare actions. modelScores.zh-CN.ts must have exactly the same keys (its type enforces it).
const modelScores = {
  title: 'Evaluation scores',
  titleOf: 'Evaluation scores of v{n}',
  intro: 'Each evaluation this version took part in, with the change against the base model scored beside it.',
  empty: 'This version has not been evaluated yet.',
  evaluate: 'Evaluate this model',
  loadFailed: 'Could not load the scores: {error}',
  col: {
    evaluation: 'Evaluation',
    dataset: 'Test set',
    scores: 'Scores',
    base: 'Against the base',
    date: 'Date',
  },
  datasetVersion: '{name} · v{n}',
  noDataset: 'deleted dataset',
  noBase: 'no base model in this evaluation',
  baseIs: 'vs {model}',
  better: 'better than the base',
  worse: 'worse than the base',
  same: 'same as the base',
  lowerBetter: 'lower is better',
  actions: {
    evaluate: 'Evaluate',
    compare: 'Compare ({n})',
    compareHint: 'Select 2 to 8 models to compare them on one test set',
    selected: '{n} selected',
  },
}

export type ModelScoresMessages = typeof modelScores
export default modelScores
