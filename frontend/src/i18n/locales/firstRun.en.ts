// English messages of the first run: the one-click "Train the demo" button.
// firstRun.zh-CN.ts must have exactly the same keys (its type enforces it).
const firstRun = {
  trainDemo: 'Train the demo',
  trainDemoHint:
    'Teaches the tiny built-in model who it is (the identity sample dataset) in about two minutes on a CPU, then chat with it.',
  started: 'Demo training queued: {name}',
}

export type FirstRunMessages = typeof firstRun
export default firstRun
