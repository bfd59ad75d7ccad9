import { ElMessageBox } from 'element-plus'
import { describe, expect, it, vi } from 'vitest'
import { createApp } from 'vue'

import { useConfirm } from '@/composables/useConfirm'
import { i18n } from '@/i18n'

function setup(): ReturnType<typeof useConfirm> {
  let confirm: ReturnType<typeof useConfirm> | undefined
  createApp({
    setup() {
      confirm = useConfirm()
      return () => null
    },
  })
    .use(i18n)
    .mount(document.createElement('div'))
  return confirm!
}

describe('useConfirm', () => {
  it('resolves true on confirm, with the title as the button and "Cancel" beside it', async () => {
    i18n.global.locale.value = 'en'
    const box = vi.spyOn(ElMessageBox, 'confirm').mockResolvedValue('confirm' as never)
    expect(await setup()('Delete "demo"?', 'Delete')).toBe(true)
    expect(box).toHaveBeenCalledWith('Delete "demo"?', 'Delete', {
      type: 'warning',
      confirmButtonText: 'Delete',
      cancelButtonText: 'Cancel',
    })
  })

  it('resolves false when the box is cancelled or closed, and takes other button texts', async () => {
    const box = vi.spyOn(ElMessageBox, 'confirm').mockRejectedValue('cancel')
    const confirm = setup()
    expect(await confirm('Merge?', 'Merge v1', { type: 'info', confirmText: 'Merge', cancelText: 'Keep' })).toBe(false)
    expect(box).toHaveBeenCalledWith('Merge?', 'Merge v1', {
      type: 'info',
      confirmButtonText: 'Merge',
      cancelButtonText: 'Keep',
    })
  })
})
