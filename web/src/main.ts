import { createApp } from 'vue'
import { createPinia } from 'pinia'
import ElementPlus from 'element-plus'
import zhCn from 'element-plus/es/locale/lang/zh-cn'
import 'element-plus/dist/index.css'
import './style.css'
import App from './App.vue'
import { router } from './router'
import { whenUnauthorized } from './api/client'
import { useAuth } from './stores/auth'

const app = createApp(App)
app.use(createPinia())
app.use(router)
app.use(ElementPlus, { locale: zhCn })

whenUnauthorized(() => {
  useAuth().forget()
  if (router.currentRoute.value.name !== 'login') router.push({ name: 'login', query: { next: router.currentRoute.value.fullPath } })
})

app.mount('#app')
