import { defineStore } from 'pinia'
import { computed, ref } from 'vue'
import { api, getToken, setToken, type Me } from '../api/client'
import { problemText } from '../api/problem'

export const useAuth = defineStore('auth', () => {
  const me = ref<Me | null>(null)
  const token = ref<string | null>(getToken())
  const loggedIn = computed(() => token.value !== null)
  const isDepartment = computed(() => !!me.value?.department_code)

  async function login(username: string, password: string): Promise<void> {
    const { data, error } = await api.POST('/api/v1/auth/token', { body: { username, password } })
    if (error || !data) throw new Error(problemText(error, '登录失败'))
    setToken(data.access_token)
    token.value = data.access_token
    await loadMe()
  }

  async function loadMe(): Promise<void> {
    if (!token.value) return
    const { data } = await api.GET('/api/v1/auth/me')
    me.value = data ?? null
  }

  async function logout(): Promise<void> {
    if (token.value) await api.POST('/api/v1/auth/logout').catch(() => undefined)
    forget()
  }

  function forget(): void {
    setToken(null)
    token.value = null
    me.value = null
  }

  return { me, token, loggedIn, isDepartment, login, loadMe, logout, forget }
})
