// English messages of the dashboard. dashboard.zh-CN.ts must have exactly the same keys (its type enforces it).
const dashboard = {
  welcome: 'Welcome, {name}',
  intro: 'Your training jobs, datasets and models at a glance, and how busy this machine is.',
  viewAll: 'View all',
  loadFailed: 'Could not load this panel: {reason}',
  firstRun: {
    title: 'Train your first model',
    body: 'One click fine-tunes the tiny built-in model on a small sample dataset: you see a whole run, live loss and checkpoints included, and can chat with the result.',
    ownJob: 'Or set up a job yourself',
  },
  jobs: {
    title: 'My recent jobs',
    empty: 'No training jobs yet. Pick a base model and a dataset to start one.',
    newJob: 'New job',
  },
  queue: {
    title: 'Queue',
    waiting: 'Waiting',
    running: 'Running',
    scopeOwn: 'Counts of your own jobs.',
    scopeAll: 'Counts over all users.',
    position: 'Your next job is #{position} in the queue.',
    noneWaiting: 'None of your jobs is waiting.',
    open: 'Open the queue',
  },
  datasets: {
    title: 'Datasets',
    empty: 'No datasets yet. Upload a JSON, JSONL, CSV, Parquet or text file to train on.',
    upload: 'Upload a dataset',
    rows: '{count} rows',
  },
  models: {
    title: 'Models',
    empty: 'No models yet. Add a base model from the Hugging Face Hub or a local folder, or train one.',
    add: 'Add a model',
    versions: 'v{version}',
  },
  host: {
    title: 'This machine',
    cpu: 'CPU ({count} cores)',
    memory: 'Memory',
    disk: 'Free disk for data',
    gpus: 'GPUs',
    gpu: 'GPU {index}',
    noGpu: 'No NVIDIA GPU found: jobs train on the CPU.',
    usedOf: '{used} of {total}',
    freeOf: '{free} free of {total}',
  },
}

export type DashboardMessages = typeof dashboard
export default dashboard
