import { describe, expect, it } from 'vitest'
import { isBlock, parseTsv, placeBlock } from './clipboard'
import { moveFor, step } from './navigation'
import { fromApiValue, toApiValue } from './values'

describe('parseTsv', () => {
  it('reads a block copied from Excel (CRLF, trailing newline)', () => {
    expect(parseTsv('1\t2\r\n3\t4\r\n')).toEqual([['1', '2'], ['3', '4']])
  })
  it('keeps quoted cells with tabs, newlines and doubled quotes', () => {
    expect(parseTsv('"a\tb"\t"x\ny"\n"say ""hi"""\t')).toEqual([['a\tb', 'x\ny'], ['say "hi"', '']])
  })
  it('tells a block from a single value', () => {
    expect(isBlock('12')).toBe(false)
    expect(isBlock('12\n')).toBe(false)
    expect(isBlock('1\t2')).toBe(true)
    expect(isBlock('1\n2')).toBe(true)
  })
})

describe('placeBlock', () => {
  it('fills a 3x3 block from the focused cell', () => {
    const { cells, cutOff } = placeBlock(parseTsv('a\tb\tc\nd\te\tf\ng\th\ti'), { row: 1, col: 0 }, { rows: 5, cols: 3 })
    expect(cells).toHaveLength(9)
    expect(cells[4]).toEqual({ row: 2, col: 1, value: 'e' })
    expect(cutOff).toBe(0)
  })
  it('cuts off what falls outside the grid', () => {
    const { cells, cutOff } = placeBlock([['1', '2'], ['3', '4']], { row: 1, col: 1 }, { rows: 2, cols: 2 })
    expect(cells).toEqual([{ row: 1, col: 1, value: '1' }])
    expect(cutOff).toBe(3)
  })
})

describe('keyboard', () => {
  const b = { rows: 3, cols: 2 }
  it('maps keys like Excel', () => {
    expect(moveFor('Tab', false, false, false)).toBe('next')
    expect(moveFor('Tab', true, false, false)).toBe('prev')
    expect(moveFor('Enter', false, false, false)).toBe('down')
    expect(moveFor('ArrowLeft', false, false, true)).toBeNull()
    expect(moveFor('ArrowLeft', false, true, false)).toBe('left')
    expect(moveFor('a', false, true, true)).toBeNull()
  })
  it('wraps Tab to the next row and stops at the edges', () => {
    expect(step({ row: 0, col: 1 }, 'next', b)).toEqual({ row: 1, col: 0 })
    expect(step({ row: 1, col: 0 }, 'prev', b)).toEqual({ row: 0, col: 1 })
    expect(step({ row: 2, col: 1 }, 'next', b)).toEqual({ row: 2, col: 1 })
    expect(step({ row: 0, col: 0 }, 'up', b)).toEqual({ row: 0, col: 0 })
    expect(step({ row: 2, col: 0 }, 'down', b)).toEqual({ row: 2, col: 0 })
  })
})

describe('values', () => {
  it('converts by column type and leaves the rest for the API to judge', () => {
    expect(toApiValue(' 12 ', 'integer')).toBe(12)
    expect(toApiValue('12a', 'integer')).toBe('12a')
    expect(toApiValue('1,234.5', 'decimal')).toBe('1234.5')
    expect(toApiValue('是', 'boolean')).toBe(true)
    expect(toApiValue('否', 'boolean')).toBe(false)
    expect(toApiValue('', 'text')).toBeNull()
    expect(fromApiValue(false)).toBe('否')
    expect(fromApiValue(null)).toBe('')
  })
})
