// Shapes of /api/v1/imports answers. The API declares them as free JSON objects (app/imports/jobs.py
// summary / list_rows), so they are written out here; keep in step with docs/imports.md.

export type ImportStatus = 'draft' | 'dry_run' | 'awaiting_approval' | 'approved' | 'committed' | 'undone'
export type Outcome = 'create' | 'update' | 'unchanged' | 'duplicate' | 'candidate' | 'error'

export interface ColumnMap {
  index: number
  header: string
  field: string | null
  how: string // 'label' | 'alias' | 'saved' | 'unknown' | 'manual'
}

export interface Issue {
  column: string | null
  raw: string | null
  field: string | null
  code: string
  message: string
  severity: 'error' | 'warning'
}

export interface Progress {
  phase: string
  done: number
  total: number
  rows_per_second?: number
  eta_seconds?: number | null
}

export interface ImportBatch {
  id: number
  ledger: string
  township: string
  status: ImportStatus
  file_name: string
  sheet: string | null
  sheets: string[]
  form_name: string | null
  mapping: ColumnMap[]
  column_issues: Issue[]
  skipped: unknown[]
  counts: Record<string, number>
  progress: Progress | null
  uploader: string
  approved_by: string | null
  approved_at: string | null
  committed_at: string | null
  undone_at: string | null
  error: string | null
  created_at: string
}

export interface ImportRowResult {
  row: number
  outcome: Outcome
  record_id: number | null
  duplicate_of: number | null
  issues: Issue[]
}

export interface UndoResult {
  id: number
  status: ImportStatus
  deleted: number
  restored: number
  conflicts: unknown[]
}
