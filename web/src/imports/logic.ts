// Pure helpers of the import wizard (tested by Vitest: imports.test.ts).
import type { ColumnMap, ImportBatch, ImportRowResult, ImportStatus, Issue, Progress } from './types'

export const STATUS_ZH: Record<ImportStatus, string> = {
  draft: '待核对列',
  dry_run: '已试导入',
  awaiting_approval: '待审核',
  approved: '已审核通过',
  committed: '已导入',
  undone: '已撤销',
}

/** The batch counts a clerk reads after a dry run, in this order. */
export const COUNT_ZH: [string, string][] = [
  ['read', '读取'],
  ['created', '新增'],
  ['updated', '更新'],
  ['unchanged', '未变'],
  ['duplicates', '文件内重复'],
  ['candidates', '疑似重复'],
  ['errors', '错误'],
  ['warnings', '提示'],
  ['skipped', '跳过的行'],
]

export const OUTCOME_ZH: Record<string, string> = {
  create: '新增',
  update: '更新',
  unchanged: '未变',
  duplicate: '文件内重复',
  candidate: '疑似重复',
  error: '错误',
}

export interface CountItem {
  key: string
  label: string
  n: number
}

/** Counts in display order; keys the API did not send are left out (before a dry run: none). */
export function countItems(counts: Record<string, number> | null | undefined): CountItem[] {
  if (!counts) return []
  return COUNT_ZH.filter(([k]) => typeof counts[k] === 'number').map(([key, label]) => ({ key, label, n: counts[key] }))
}

/** The wizard step (0 上传文件, 1 核对列, 2 试导入, 3 提交审核) a batch in this state is at. */
export function stepOf(status: ImportStatus | undefined): number {
  switch (status) {
    case undefined:
      return 0
    case 'draft':
      return 1
    case 'dry_run':
      return 2
    default:
      return 3
  }
}

export interface IssueLine {
  key: string
  row: number
  outcome: string
  column: string
  raw: string
  reason: string
  severity: 'error' | 'warning'
}

/** One table line per issue of each row (a row without issues still gets one line: its outcome). */
export function issueLines(rows: ImportRowResult[]): IssueLine[] {
  const out: IssueLine[] = []
  for (const r of rows) {
    const outcome = OUTCOME_ZH[r.outcome] ?? r.outcome
    const issues: Issue[] = r.issues?.length ? r.issues : []
    if (!issues.length) {
      out.push({ key: `${r.row}`, row: r.row, outcome, column: '', raw: '', reason: outcome, severity: 'warning' })
      continue
    }
    issues.forEach((i, n) =>
      out.push({
        key: `${r.row}-${n}`,
        row: r.row,
        outcome,
        column: i.column ?? '',
        raw: i.raw ?? '',
        reason: i.message,
        severity: i.severity,
      }),
    )
  }
  // Errors first within a row, rows in sheet order.
  return out.sort((a, b) => a.row - b.row || Number(b.severity === 'error') - Number(a.severity === 'error'))
}

export interface FieldOption {
  value: string
  label: string
}

/** Dropdown options: the ledger's catalogue fields by label, plus any mapped path not among them. */
export function fieldOptions(fields: { code: string; label: string }[], mapping: ColumnMap[]): FieldOption[] {
  const opts = fields.map((f) => ({ value: f.code, label: `${f.label}（${f.code}）` }))
  const known = new Set(opts.map((o) => o.value))
  for (const m of mapping) {
    if (m.field && !known.has(m.field)) {
      known.add(m.field)
      opts.push({ value: m.field, label: m.field })
    }
  }
  return opts
}

/** The PUT /mapping body: only the columns whose field the clerk changed (null = 不导入). */
export function mappingChanges(original: ColumnMap[], edited: Record<number, string | null>): Record<string, string | null> {
  const out: Record<string, string | null> = {}
  for (const m of original) {
    if (!(m.index in edited)) continue
    const next = edited[m.index] || null
    if (next !== (m.field ?? null)) out[String(m.index)] = next
  }
  return out
}

/** Column-level issues (refused / unmapped columns) of a batch by header, for the mapping table. */
export function columnIssuesByHeader(batch: Pick<ImportBatch, 'column_issues'>): Map<string, Issue> {
  const out = new Map<string, Issue>()
  for (const i of batch.column_issues ?? []) if (i.column && !out.has(i.column)) out.set(i.column, i)
  return out
}

/** Who may press what on a batch (the API decides; this only hides buttons that would be refused). */
/** The API names people as `kind:id:name` (Principal.actor). */
export function actorOf(me: { kind: string; id: number; name: string }): string {
  return `${me.kind}:${me.id}:${me.name}`
}

export function actions(
  batch: Pick<ImportBatch, 'status' | 'uploader'>,
  me: { kind: string; id: number; name: string; roles: string[] },
) {
  const reviewer = me.roles.some((r) => ['platform_admin', 'dept_admin', 'district_reviewer'].includes(r))
  const uploader = batch.uploader === actorOf(me)
  return {
    edit: uploader && (batch.status === 'draft' || batch.status === 'dry_run'),
    submit: uploader && batch.status === 'dry_run',
    approve: reviewer && !uploader && batch.status === 'awaiting_approval',
    commit: (reviewer || uploader) && batch.status === 'approved',
    undo: (reviewer || uploader) && batch.status === 'committed',
  }
}

const PHASE_ZH: Record<string, string> = {
  read: '读取', convert: '转换', match: '比对', write: '写入',
}

/** "试导入：1,200 / 5,000 行，约 12 秒" from the batch's progress (phase names the API may add show as they are). */
export function progressText(p: Progress): string {
  const n = (x: number) => x.toLocaleString('en-US')
  const eta = typeof p.eta_seconds === 'number' && p.eta_seconds > 0 ? `，约 ${Math.ceil(p.eta_seconds)} 秒` : ''
  return `${PHASE_ZH[p.phase] ?? p.phase}：${n(p.done)} / ${n(p.total)} 行${eta}`
}
