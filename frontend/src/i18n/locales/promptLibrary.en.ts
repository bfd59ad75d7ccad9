// English messages of the system prompt library manager.
// promptLibrary.zh-CN.ts must have exactly the same keys (its type enforces it).
const promptLibrary = {
  title: 'Prompt library',
  manage: 'Manage prompts',
  name: 'Name',
  content: 'Prompt',
  contentHint: 'The system prompt. Placeholders such as {example} become variables filled in when it is used.',
  variables: 'Variables',
  detectedVariables: 'Variables: {names}',
  noVariables: 'No variables.',
  sharedHint: 'Share with every user (they can use it, not change it)',
  search: 'Search names and text',
  new: 'New prompt',
  edit: 'Edit',
  readOnly: 'Shared with you',
  scopes: {
    all: 'All',
    mine: 'Mine',
    shared: 'Shared',
  },
  created: 'Prompt "{name}" saved',
  updated: 'Prompt "{name}" updated',
  deleted: 'Prompt "{name}" deleted',
  deleteConfirm: 'Delete the prompt "{name}"? This cannot be undone.',
}

export type PromptLibraryMessages = typeof promptLibrary
export default promptLibrary
