// English messages of the alerts pages (list, header bell, rules). opsAlerts.zh-CN.ts must have exactly
// the same keys (its type enforces it).
const opsAlerts = {
  title: 'Alerts',
  subtitle:
    'Problems the health checks found on nodes and jobs. Acknowledge one you are looking into; most clear by themselves, or resolve it when it is fixed.',
  filters: {
    active: 'Active',
    open: 'Open',
    acknowledged: 'Acknowledged',
    resolved: 'Resolved',
    all: 'All',
  },
  statuses: {
    open: 'Open',
    acknowledged: 'Acknowledged',
    resolved: 'Resolved',
  },
  severities: {
    critical: 'Critical',
    warning: 'Warning',
  },
  rules: {
    gpu_temperature: 'GPU temperature',
    gpu_throttle: 'GPU throttling',
    gpu_memory: 'GPU memory',
    disk_free: 'Low disk space',
    node_lost: 'Node not reporting',
    job_hung: 'Hung job',
    node_failures: 'Repeated failures',
  },
  columns: {
    status: 'Status',
    alert: 'Alert',
    where: 'Where',
    raised: 'Raised',
    handling: 'Handled',
  },
  job: 'Job #{id}',
  acknowledge: 'Acknowledge',
  resolve: 'Resolve',
  acknowledgedMessage: 'Alert acknowledged',
  resolvedMessage: 'Alert resolved',
  resolveConfirm: 'Resolve “{title}”? If the problem is still there, the next check raises a new alert.',
  acknowledgedBy: 'Acknowledged by {name}, {time}',
  resolvedBy: 'Resolved by {name}, {time}',
  resolvedAutomatically: 'Cleared by itself, {time}',
  someone: 'someone',
  emptyActive: 'No active alerts: everything looks healthy.',
  emptyOther: 'No alerts match this filter.',
  undelivered: {
    email: 'The alert email could not be sent',
    webhook: 'The alert webhook could not be delivered',
  },
  openCount: '{n} open',
  refresh: 'Refresh',
  bell: {
    title: 'Alerts',
    none: 'No open alerts',
    open: '{n} open alert | {n} open alerts',
    viewAll: 'All alerts',
  },
  rulesTitle: 'Alert rules',
  rulesSubtitle:
    'The thresholds of the health checks that run on every node and job. A change applies from the next check.',
  groups: {
    gpu: 'GPUs',
    node: 'Nodes',
    jobs: 'Jobs',
  },
  fields: {
    gpu_temperature_c: {
      label: 'GPU temperature',
      unit: '°C',
      help: "Alert when a GPU is this hot. Empty: each GPU's own slowdown temperature (85 °C when it reports none).",
    },
    gpu_memory_percent: {
      label: 'GPU memory in use',
      unit: '%',
      help: "Alert when a GPU's memory is this full.",
    },
    disk_free_gb: {
      label: 'Free disk space below',
      unit: 'GB',
      help: "Alert when the data directory's disk has less free space; the node also takes no new jobs until it has more.",
    },
    job_hung_minutes: {
      label: 'Job hung after',
      unit: 'min',
      help: 'A running job with no training event for this long is hung.',
    },
    job_hung_action: {
      label: 'When a job hangs',
      help: 'Stopping frees its GPUs for the queue; the job can be resumed from its last checkpoint.',
    },
    node_failures: {
      label: 'Failed jobs on one node',
      unit: 'jobs',
      help: 'Alert when this many jobs failed on the same node…',
    },
    node_failures_window_hours: {
      label: '…within',
      unit: 'h',
      help: 'The window the failed jobs are counted in.',
    },
  },
  hungActions: {
    alert: 'Alert only',
    stop: 'Alert and stop the job',
  },
  defaultValue: 'Default: {value}',
  perGpu: "each GPU's slowdown temperature",
  perGpuShort: 'Per GPU',
  changed: 'changed',
  resetOne: 'Reset to default',
  resetAll: 'Reset all to defaults',
  resetAllConfirm: 'Put every alert rule back to its default?',
  saved: 'Alert rules saved',
  resetDone: 'Back to the default',
  nothingChanged: 'Nothing to save: no rule changed.',
  problems: {
    required: 'Enter a value',
    tooLow: 'At least {min}',
    tooLowExclusive: 'More than {min}',
    tooHigh: 'At most {max}',
    integer: 'A whole number',
  },
}

export default opsAlerts
