// The typed API client: paths and bodies come from schemas/openapi.json (npm run gen:api), so a
// contract change breaks `npm run build` instead of the clerk's screen.
import createClient, { type Middleware } from 'openapi-fetch'
import type { paths, components } from './schema'

export type Schemas = components['schemas']
export type TaskHead = Schemas['TaskHead']
export type TaskView = Schemas['TaskView']
export type TaskRow = Schemas['TaskRow']
export type Column = Schemas['ColumnOut']
export type Me = Schemas['MeResponse']

const TOKEN_KEY = 'onetable.token'

export function getToken(): string | null {
  return sessionStorage.getItem(TOKEN_KEY)
}

export function setToken(token: string | null): void {
  if (token) sessionStorage.setItem(TOKEN_KEY, token)
  else sessionStorage.removeItem(TOKEN_KEY)
}

/** Called on a 401 (expired or revoked token): the app goes back to 登录. */
let onUnauthorized: () => void = () => {}
export function whenUnauthorized(fn: () => void): void {
  onUnauthorized = fn
}

const auth: Middleware = {
  onRequest({ request }) {
    const token = getToken()
    if (token) request.headers.set('Authorization', `Bearer ${token}`)
    return request
  },
  onResponse({ response, request }) {
    if (response.status === 401 && !request.url.endsWith('/auth/token')) onUnauthorized()
    return response
  },
}

export const api = createClient<paths>({ baseUrl: '' })
api.use(auth)

/** Binary downloads (XLSX) go around the JSON client but carry the same token. */
export async function download(path: string): Promise<{ blob: Blob; name: string }> {
  const token = getToken()
  const r = await fetch(`/api/v1${path}`, { headers: token ? { Authorization: `Bearer ${token}` } : {} })
  if (!r.ok) throw await r.json().catch(() => ({ title: `下载失败（${r.status}）` }))
  const disposition = r.headers.get('Content-Disposition') ?? ''
  const m = /filename\*=UTF-8''([^;]+)/.exec(disposition)
  return { blob: await r.blob(), name: m ? decodeURIComponent(m[1]) : 'download.xlsx' }
}

export function saveBlob(blob: Blob, name: string): void {
  const url = URL.createObjectURL(blob)
  const a = document.createElement('a')
  a.href = url
  a.download = name
  a.click()
  setTimeout(() => URL.revokeObjectURL(url), 1000)
}
