// Chinese words for API codes; the API's own STATE_ZH (app/report/common.py) is the source.
export const STATE_ZH: Record<string, string> = {
  dispatched: '未开始',
  in_progress: '填报中',
  submitted: '已提交',
  returned: '已退回',
  approved: '已通过',
}

export const STATE_TAG: Record<string, 'info' | 'primary' | 'success' | 'warning' | 'danger'> = {
  dispatched: 'info',
  in_progress: 'primary',
  submitted: 'success',
  returned: 'danger',
  approved: 'success',
}

export const OPEN_STATES = new Set(['dispatched', 'in_progress', 'returned'])

export function formatDateTime(iso: string | null | undefined): string {
  if (!iso) return ''
  const d = new Date(iso)
  if (Number.isNaN(d.getTime())) return String(iso)
  const p = (n: number) => String(n).padStart(2, '0')
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ${p(d.getHours())}:${p(d.getMinutes())}`
}

/** A cell value as a person reads it: booleans 是/否, nothing as empty. Masked strings stay as they come. */
export function showValue(v: unknown): string {
  if (v === null || v === undefined) return ''
  if (v === true) return '是'
  if (v === false) return '否'
  if (typeof v === 'object') return JSON.stringify(v)
  return String(v)
}
