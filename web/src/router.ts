import { createRouter, createWebHistory } from 'vue-router'
import { useAuth } from './stores/auth'

// History mode: the service answers index.html for every non-API path (app/web.py).
export const router = createRouter({
  history: createWebHistory(),
  routes: [
    { path: '/login', name: 'login', component: () => import('./views/LoginView.vue'), meta: { public: true, title: '登录' } },
    {
      path: '/',
      component: () => import('./layout/AppLayout.vue'),
      children: [
        { path: '', name: 'home', component: () => import('./views/HomeView.vue'), meta: { title: '待办' } },
        { path: 'tasks/:id', name: 'task', component: () => import('./views/TaskView.vue'), props: true, meta: { title: '填报' } },
        { path: 'ledgers', name: 'ledgers', component: () => import('./views/LedgerView.vue'), meta: { title: '台账' } },
        { path: 'imports', name: 'import-new', component: () => import('./views/ImportView.vue'), meta: { title: '导入' } },
        { path: 'imports/:id', name: 'import', component: () => import('./views/ImportView.vue'), props: true, meta: { title: '导入批次' } },
        { path: 'summary', name: 'summary', component: () => import('./views/SummaryView.vue'), meta: { title: '汇总' } },
      ],
    },
    { path: '/:rest(.*)*', redirect: '/' },
  ],
})

router.beforeEach(async (to) => {
  const auth = useAuth()
  if (!to.meta.public && !auth.loggedIn) return { name: 'login', query: { next: to.fullPath } }
  if (auth.loggedIn && !auth.me) await auth.loadMe()
  document.title = `${(to.meta.title as string) ?? ''} - 一表通`
  return true
})
