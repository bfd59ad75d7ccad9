import 'element-plus/dist/index.css'
import 'element-plus/theme-chalk/dark/css-vars.css'
import './styles.css'

import ElementPlus from 'element-plus'
import { createPinia } from 'pinia'
import { createApp } from 'vue'

import App from './App.vue'
import { setAuthHooks } from './api/http'
import { i18n } from './i18n'
import { createAppRouter } from './router'
import { useAuthStore } from './stores/auth'
import { useLocaleStore } from './stores/locale'
import { useThemeStore } from './stores/theme'

const app = createApp(App)
const pinia = createPinia()
app.use(pinia)
app.use(i18n)
app.use(ElementPlus)

// Create the preference stores before the first render so <html lang> and html.dark are right
// from the first paint.
useLocaleStore()
useThemeStore()
const auth = useAuthStore()

const router = createAppRouter()
app.use(router)

// A 401 that a refresh could not fix: drop the session and return to the login page.
setAuthHooks({
  onAuthFailure: () => {
    auth.clearSession()
    const current = router.currentRoute.value
    if (!current.meta.public) {
      void router.push({ name: 'login', query: { redirect: current.fullPath, expired: '1' } })
    }
  },
})

void router.isReady().then(() => app.mount('#app'))
