// Calls of the import wizard. Paths and parameters go through the typed client (a renamed route
// breaks the build); the answers are free JSON in the contract, typed by ./types.
import { api, getToken } from '../api/client'
import type { ImportBatch, ImportRowResult, Outcome, UndoResult } from './types'

type Id = { params: { path: { batch_id: number } } }
const id = (batch_id: number): Id => ({ params: { path: { batch_id } } })

/** openapi-fetch's result, the problem body thrown as it is (problemText reads it). */
function unwrap<T>(r: { data?: unknown; error?: unknown }): T {
  if (r.error !== undefined || r.data === undefined) throw r.error ?? { title: '操作失败' }
  return r.data as T
}

export interface UploadForm {
  file: File
  ledger: string
  township: string
  sheet?: string
  form_name?: string
}

/** Multipart upload: around the JSON client, with the same token. */
export async function uploadImport(form: UploadForm): Promise<ImportBatch> {
  const body = new FormData()
  body.append('file', form.file, form.file.name)
  body.append('ledger', form.ledger)
  body.append('township', form.township)
  if (form.sheet) body.append('sheet', form.sheet)
  if (form.form_name) body.append('form_name', form.form_name)
  const token = getToken()
  const r = await fetch('/api/v1/imports', {
    method: 'POST',
    body,
    headers: token ? { Authorization: `Bearer ${token}` } : {},
  })
  const json = await r.json().catch(() => ({ title: `上传失败（${r.status}）` }))
  if (!r.ok) throw json
  return json as ImportBatch
}

export const getBatch = async (b: number) => unwrap<ImportBatch>(await api.GET('/api/v1/imports/{batch_id}', id(b)))

export const chooseSheet = async (b: number, sheet: string) =>
  unwrap<ImportBatch>(await api.POST('/api/v1/imports/{batch_id}/sheet', { ...id(b), body: { sheet } }))

export const setMapping = async (b: number, columns: Record<string, string | null>) =>
  unwrap<ImportBatch>(await api.PUT('/api/v1/imports/{batch_id}/mapping', { ...id(b), body: { columns } }))

export const dryRun = async (b: number) => unwrap<ImportBatch>(await api.POST('/api/v1/imports/{batch_id}/dry-run', id(b)))
export const submitBatch = async (b: number) => unwrap<ImportBatch>(await api.POST('/api/v1/imports/{batch_id}/submit', id(b)))
export const approveBatch = async (b: number) => unwrap<ImportBatch>(await api.POST('/api/v1/imports/{batch_id}/approve', id(b)))
export const commitBatch = async (b: number) => unwrap<ImportBatch>(await api.POST('/api/v1/imports/{batch_id}/commit', id(b)))
export const undoBatch = async (b: number) => unwrap<UndoResult>(await api.POST('/api/v1/imports/{batch_id}/undo', id(b)))

export async function listRows(b: number, outcome: Outcome, limit = 200): Promise<{ items: ImportRowResult[]; next_after: number | null }> {
  return unwrap(
    await api.GET('/api/v1/imports/{batch_id}/rows', { params: { path: { batch_id: b }, query: { outcome, limit } } }),
  )
}

export interface CatalogField {
  code: string
  label: string
}

export async function ledgerFields(ledger: string): Promise<CatalogField[]> {
  const r = await api.GET('/api/v1/catalog/ledgers/{code}', { params: { path: { code: ledger } } })
  const data = unwrap<{ fields?: CatalogField[] }>(r)
  return data.fields ?? []
}

export async function ledgers(): Promise<{ code: string; label: string; kind?: string }[]> {
  return unwrap(await api.GET('/api/v1/catalog/ledgers'))
}
