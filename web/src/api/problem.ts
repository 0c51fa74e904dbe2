// RFC 9457 problem+json answers of the API, turned into what a person reads (already Chinese).

export interface FieldError {
  path: string
  code: string
  message: string
}

export interface ProblemBody {
  title?: string
  detail?: string
  code?: string
  status?: number
  errors?: FieldError[]
  cells?: { row_key: string; column_code: string; reason?: string; column_label?: string | null; row?: number }[]
  [key: string]: unknown
}

export function cellKey(row: string, column: string): string {
  return `${row}\u0000${column}`
}

/** One message per cell a problem names: `cells[]` (save) or `rows.<key>.<column>` paths (submit). */
export function cellMessages(problem: ProblemBody): Map<string, string> {
  const out = new Map<string, string>()
  for (const c of problem.cells ?? []) {
    out.set(cellKey(c.row_key, c.column_code), c.reason ?? '必填项未填写')
  }
  for (const e of problem.errors ?? []) {
    const m = /^rows\.([^.]+)\.(.+)$/.exec(e.path)
    if (m && !out.has(cellKey(m[1], m[2]))) out.set(cellKey(m[1], m[2]), e.message)
  }
  return out
}

export function problemText(problem: unknown, fallback = '操作失败'): string {
  if (problem && typeof problem === 'object') {
    const p = problem as ProblemBody
    const first = p.errors?.[0]?.message
    return [p.title ?? fallback, p.detail, first && first !== p.title ? first : undefined].filter(Boolean).join('：')
  }
  return fallback
}
