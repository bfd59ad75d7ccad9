import ElementPlus from 'element-plus'
import { createApp, h } from 'vue'

import { i18n } from '@/i18n'

/**
 * Mount a component with the app's i18n (English) and Element Plus; returns its element, the
 * whitespace-folded text of an element by test id (null when absent), and a cleanup.
 */
export function mount(component: Parameters<typeof h>[0], props: Record<string, unknown>) {
  const el = document.createElement('div')
  document.body.appendChild(el)
  i18n.global.locale.value = 'en'
  const app = createApp({ render: () => h(component, props) })
  app.use(i18n).use(ElementPlus).mount(el)
  return {
    el,
    text: (id: string) => el.querySelector(`[data-testid="${id}"]`)?.textContent?.replace(/\s+/g, ' ').trim() ?? null,
    unmount: () => {
      app.unmount()
      el.remove()
    },
  }
}
