/**
 * Phone-sized screens (below 768 px, Element Plus's `sm`): the layout turns the sidebar into a drawer,
 * the header folds its controls into a menu, and tables stop pinning their action columns.
 *
 * One media-query listener for the whole app, created on first use; every caller shares its state.
 */
import { computed, readonly, ref, type ComputedRef, type Ref } from 'vue'

export const MOBILE_QUERY = '(max-width: 767.98px)'

let shared: Ref<boolean> | null = null

export function useIsMobile(): Readonly<Ref<boolean>> {
  if (shared === null) {
    const query = typeof window.matchMedia === 'function' ? window.matchMedia(MOBILE_QUERY) : null
    const state = ref(query?.matches ?? false)
    query?.addEventListener('change', (event) => {
      state.value = event.matches
    })
    shared = state
  }
  return readonly(shared)
}

type Fixed = 'left' | 'right' | false

/**
 * The `fixed` attribute of a table's key and action columns. On a desktop the actions stay in
 * reach at the right; on a phone a pinned action column would leave no room for anything else, so
 * the table scrolls sideways instead with the key (name) column pinned, so a row stays recognisable.
 */
export function useTableFixed(): { pinKey: ComputedRef<Fixed>; pinActions: ComputedRef<Fixed> } {
  const isMobile = useIsMobile()
  return {
    pinKey: computed(() => (isMobile.value ? 'left' : false)),
    pinActions: computed(() => (isMobile.value ? false : 'right')),
  }
}
