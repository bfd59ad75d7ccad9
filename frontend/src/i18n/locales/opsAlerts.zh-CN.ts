import type opsAlertsEn from './opsAlerts.en'

// 告警页面（列表、顶栏铃铛、告警规则）的简体中文。键必须与 opsAlerts.en.ts 一致。
const opsAlerts: typeof opsAlertsEn = {
  title: '告警',
  subtitle: '健康检查在节点和任务上发现的问题。正在处理的告警请先确认；多数告警会自动解除，修复后也可手动解决。',
  filters: {
    active: '未解决',
    open: '待处理',
    acknowledged: '已确认',
    resolved: '已解决',
    all: '全部',
  },
  statuses: {
    open: '待处理',
    acknowledged: '已确认',
    resolved: '已解决',
  },
  severities: {
    critical: '严重',
    warning: '警告',
  },
  rules: {
    gpu_temperature: 'GPU 温度',
    gpu_throttle: 'GPU 降频',
    gpu_memory: 'GPU 显存',
    disk_free: '磁盘空间不足',
    node_lost: '节点失联',
    job_hung: '任务卡住',
    node_failures: '多次失败',
  },
  columns: {
    status: '状态',
    alert: '告警',
    where: '位置',
    raised: '触发时间',
    handling: '处理情况',
  },
  job: '任务 #{id}',
  acknowledge: '确认',
  resolve: '解决',
  acknowledgedMessage: '已确认告警',
  resolvedMessage: '已解决告警',
  resolveConfirm: '解决“{title}”？如果问题仍然存在，下一次检查会再次触发告警。',
  acknowledgedBy: '{name} 于 {time} 确认',
  resolvedBy: '{name} 于 {time} 解决',
  resolvedAutomatically: '{time} 自动解除',
  someone: '某人',
  emptyActive: '没有未解决的告警：一切正常。',
  emptyOther: '没有符合筛选条件的告警。',
  undelivered: {
    email: '告警邮件发送失败',
    webhook: '告警 Webhook 投递失败',
  },
  openCount: '{n} 条待处理',
  refresh: '刷新',
  bell: {
    title: '告警',
    none: '没有待处理的告警',
    open: '{n} 条待处理告警',
    viewAll: '全部告警',
  },
  rulesTitle: '告警规则',
  rulesSubtitle: '对每个节点和任务运行的健康检查所用的阈值。修改从下一次检查起生效。',
  groups: {
    gpu: 'GPU',
    node: '节点',
    jobs: '任务',
  },
  fields: {
    gpu_temperature_c: {
      label: 'GPU 温度',
      unit: '°C',
      help: 'GPU 达到该温度时告警。留空：使用每块 GPU 自身的降频温度（未提供时为 85 °C）。',
    },
    gpu_memory_percent: {
      label: 'GPU 显存占用',
      unit: '%',
      help: 'GPU 显存占用达到该比例时告警。',
    },
    disk_free_gb: {
      label: '磁盘剩余空间低于',
      unit: 'GB',
      help: '数据目录所在磁盘的剩余空间低于该值时告警；在空间恢复之前该节点也不再接收新任务。',
    },
    job_hung_minutes: {
      label: '任务卡住判定',
      unit: '分钟',
      help: '运行中的任务在这段时间内没有任何训练事件，即视为卡住。',
    },
    job_hung_action: {
      label: '任务卡住时',
      help: '停止任务会把它占用的 GPU 让给队列；之后可以从最近的检查点继续。',
    },
    node_failures: {
      label: '同一节点失败任务数',
      unit: '个',
      help: '同一节点上失败的任务达到该数量时告警……',
    },
    node_failures_window_hours: {
      label: '……统计时间窗口',
      unit: '小时',
      help: '在这段时间内统计失败的任务。',
    },
  },
  hungActions: {
    alert: '仅告警',
    stop: '告警并停止任务',
  },
  defaultValue: '默认值：{value}',
  perGpu: '每块 GPU 的降频温度',
  perGpuShort: '按 GPU',
  changed: '已修改',
  resetOne: '恢复默认',
  resetAll: '全部恢复默认',
  resetAllConfirm: '把所有告警规则恢复为默认值？',
  saved: '告警规则已保存',
  resetDone: '已恢复默认值',
  nothingChanged: '没有需要保存的修改。',
  problems: {
    required: '请输入数值',
    tooLow: '不能小于 {min}',
    tooLowExclusive: '必须大于 {min}',
    tooHigh: '不能大于 {max}',
    integer: '必须是整数',
  },
}

export default opsAlerts
