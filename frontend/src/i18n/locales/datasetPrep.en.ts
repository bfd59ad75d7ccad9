// English messages of dataset preprocessing (the dry-run estimate) and of the version diff.
// datasetPrep.zh-CN.ts must have exactly the same keys (its type enforces it).
const datasetPrep = {
  estimate: {
    exact: 'Counted over all {rows} rows: this is what the run will do.',
    extrapolated: 'An estimate: the filters ran over the first {sample} of {rows} rows and the counts are scaled up.',
    shown: 'The first {count} rows, before and after',
  },
  diff: {
    row: 'Row {row}',
    unchanged: 'No unchanged fields | 1 unchanged field | {n} unchanged fields',
    hideUnchanged: 'Hide the unchanged fields',
  },
}

export type DatasetPrepMessages = typeof datasetPrep
export default datasetPrep
