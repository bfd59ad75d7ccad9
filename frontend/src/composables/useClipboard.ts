import { ElMessage } from 'element-plus'
import { useI18n } from 'vue-i18n'

/** Copy text and say whether it worked (the Clipboard API needs a secure context or localhost). */
export function useClipboard() {
  const { t } = useI18n()

  async function copy(text: string): Promise<boolean> {
    try {
      await navigator.clipboard.writeText(text)
      ElMessage.success(t('common.copied'))
      return true
    } catch {
      ElMessage.warning(t('common.copyFailed'))
      return false
    }
  }

  return { copy }
}
