/**
 * "You have an unsent message": switching the model (or leaving the conversation) with text in the
 * input asks before the text is thrown away. The question itself is injected, so the rule is
 * testable without a dialog.
 */
export type Ask = () => Promise<boolean>

/** True when the action may go on: there is no draft, or the user agreed to discard it. */
export async function mayDiscardDraft(draft: string, ask: Ask): Promise<boolean> {
  if (draft.trim() === '') return true
  try {
    return await ask()
  } catch {
    return false // a dialog closed by Escape or the close button rejects: keep the draft
  }
}
