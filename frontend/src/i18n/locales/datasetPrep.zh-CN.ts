import type { DatasetPrepMessages } from './datasetPrep.en'

const datasetPrep: DatasetPrepMessages = {
  estimate: {
    exact: '基于全部 {rows} 行统计：正式运行的结果与此相同。',
    extrapolated: '估算值：筛选只在 {rows} 行中的前 {sample} 行上运行，计数按比例放大。',
    shown: '前 {count} 行的处理前后对比',
  },
  diff: {
    row: '第 {row} 行',
    unchanged: '没有未改动的字段 | 1 个未改动的字段 | {n} 个未改动的字段',
    hideUnchanged: '收起未改动的字段',
  },
}

export default datasetPrep
