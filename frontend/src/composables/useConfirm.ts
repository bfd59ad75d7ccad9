import { ElMessageBox } from 'element-plus'
import { useI18n } from 'vue-i18n'

export interface ConfirmOptions {
  /** The confirm button's text (default: the title, e.g. "Delete"). */
  confirmText?: string
  /** The cancel button's text (default: "Cancel"). */
  cancelText?: string
  type?: 'warning' | 'info'
}

/**
 * Ask before an action: resolves true when the user confirms, false when they cancel or close
 * the box (Escape, ×). One place for the box's look, so every "Delete X?" reads the same.
 */
export function useConfirm() {
  const { t } = useI18n()

  return async function confirm(message: string, title: string, options: ConfirmOptions = {}): Promise<boolean> {
    try {
      await ElMessageBox.confirm(message, title, {
        type: options.type ?? 'warning',
        confirmButtonText: options.confirmText ?? title,
        cancelButtonText: options.cancelText ?? t('common.cancel'),
      })
      return true
    } catch {
      return false
    }
  }
}
