import { describe, expect, it } from 'vitest'
import { actions, columnIssuesByHeader, progressText, countItems, fieldOptions, issueLines, mappingChanges, stepOf } from './logic'
import type { ColumnMap, ImportRowResult } from './types'

const mapping: ColumnMap[] = [
  { index: 0, header: '姓名', field: 'name', how: 'label' },
  { index: 1, header: '公民身份号码', field: 'id_number', how: 'alias' },
  { index: 2, header: '备注', field: null, how: 'unknown' },
  { index: 3, header: '户号', field: 'household.number', how: 'alias' },
]

describe('import wizard logic', () => {
  it('lists counts in display order with Chinese labels, skipping absent keys', () => {
    expect(countItems({ errors: 1, read: 3, created: 2 })).toEqual([
      { key: 'read', label: '读取', n: 3 },
      { key: 'created', label: '新增', n: 2 },
      { key: 'errors', label: '错误', n: 1 },
    ])
    expect(countItems({})).toEqual([])
    expect(countItems(null)).toEqual([])
  })

  it('puts a batch at the step its state belongs to', () => {
    expect(stepOf(undefined)).toBe(0)
    expect(stepOf('draft')).toBe(1)
    expect(stepOf('dry_run')).toBe(2)
    expect(stepOf('awaiting_approval')).toBe(3)
    expect(stepOf('committed')).toBe(3)
  })

  it('flattens row issues into table lines, errors first within a row', () => {
    const rows: ImportRowResult[] = [
      {
        row: 7, outcome: 'error', record_id: null, duplicate_of: null,
        issues: [
          { column: '性别', raw: '男', field: 'sex', code: 'w', message: '与身份证号不符', severity: 'warning' },
          { column: '公民身份号码', raw: '500118196001019990', field: 'id_number', code: 'e', message: '校验位错误', severity: 'error' },
        ],
      },
      { row: 4, outcome: 'candidate', record_id: null, duplicate_of: null, issues: [] },
    ]
    const lines = issueLines(rows)
    expect(lines.map((l) => [l.row, l.column, l.reason])).toEqual([
      [4, '', '疑似重复'],
      [7, '公民身份号码', '校验位错误'],
      [7, '性别', '与身份证号不符'],
    ])
    expect(lines[1].raw).toBe('500118196001019990')
    expect(new Set(lines.map((l) => l.key)).size).toBe(3)
  })

  it('offers catalogue labels and keeps mapped paths outside the catalogue', () => {
    const opts = fieldOptions([{ code: 'name', label: '姓名' }, { code: 'id_number', label: '公民身份号码' }], mapping)
    expect(opts.map((o) => o.value)).toEqual(['name', 'id_number', 'household.number'])
    expect(opts[0].label).toBe('姓名（name）')
  })

  it('sends only the changed columns, empty meaning 不导入', () => {
    expect(mappingChanges(mapping, { 0: 'name', 1: '', 2: 'remark' })).toEqual({ '1': null, '2': 'remark' })
    expect(mappingChanges(mapping, {})).toEqual({})
  })

  it('indexes column issues by header', () => {
    const m = columnIssuesByHeader({
      column_issues: [{ column: '备注', raw: null, field: null, code: 'import.column_unmapped', message: '未识别的列，未导入', severity: 'warning' }],
    })
    expect(m.get('备注')?.message).toBe('未识别的列，未导入')
    expect(m.has('姓名')).toBe(false)
  })

  it('offers review buttons to a reviewer who is not the uploader, never to the uploader', () => {
    const clerk = { kind: 'user', id: 3, name: 'ta', roles: ['township_admin'] }
    const admin = { kind: 'user', id: 9, name: 'admin', roles: ['platform_admin'] }
    const waiting = { status: 'awaiting_approval' as const, uploader: 'user:3:ta' }
    expect(actions(waiting, clerk).approve).toBe(false)
    expect(actions(waiting, admin).approve).toBe(true)
    expect(actions({ status: 'dry_run', uploader: 'user:3:ta' }, clerk).submit).toBe(true)
    expect(actions({ status: 'dry_run', uploader: 'user:3:ta' }, admin).submit).toBe(false)
    expect(actions({ status: 'approved', uploader: 'user:3:ta' }, admin).commit).toBe(true)
    expect(actions({ status: 'committed', uploader: 'user:3:ta' }, clerk).undo).toBe(true)
    expect(actions({ status: 'undone', uploader: 'user:3:ta' }, admin).undo).toBe(false)
  })

  it('reads progress in Chinese, unknown phases as they are', () => {
    expect(progressText({ phase: 'convert', done: 1200, total: 5000, eta_seconds: 11.2 })).toBe('转换：1,200 / 5,000 行，约 12 秒')
    expect(progressText({ phase: 'other', done: 0, total: 3, eta_seconds: null })).toBe('other：0 / 3 行')
  })
})
