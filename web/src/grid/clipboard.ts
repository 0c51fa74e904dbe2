// A block copied from Excel / WPS arrives as TSV: rows split by newlines, cells by tabs, quoted
// cells when they hold a tab, newline or quote. This turns it into cell assignments from the
// focused cell, right over the editable columns and down the rows.
import type { Bounds, Pos } from './navigation'

export function parseTsv(text: string): string[][] {
  const rows: string[][] = []
  let row: string[] = []
  let cell = ''
  let quoted = false
  let i = 0
  const src = text.replace(/\r\n?/g, '\n')
  while (i < src.length) {
    const ch = src[i]
    if (quoted) {
      if (ch === '"' && src[i + 1] === '"') {
        cell += '"'
        i += 2
        continue
      }
      if (ch === '"') {
        quoted = false
        i++
        continue
      }
      cell += ch
      i++
      continue
    }
    if (ch === '"' && cell === '') {
      quoted = true
    } else if (ch === '\t') {
      row.push(cell)
      cell = ''
    } else if (ch === '\n') {
      row.push(cell)
      rows.push(row)
      row = []
      cell = ''
    } else {
      cell += ch
    }
    i++
  }
  if (cell !== '' || row.length) {
    row.push(cell)
    rows.push(row)
  }
  return rows
}

/** True when the text is a block (more than one cell), not a single value typed into one cell. */
export function isBlock(text: string): boolean {
  const block = parseTsv(text)
  return block.length > 1 || (block[0]?.length ?? 0) > 1
}

export interface Assignment extends Pos {
  value: string
}

/** Cells of the block that land inside the grid; the rest is counted as cut off. */
export function placeBlock(block: string[][], at: Pos, b: Bounds): { cells: Assignment[]; cutOff: number } {
  const cells: Assignment[] = []
  let cutOff = 0
  block.forEach((line, dr) =>
    line.forEach((value, dc) => {
      const row = at.row + dr
      const col = at.col + dc
      if (row < b.rows && col < b.cols) cells.push({ row, col, value: value.trim() })
      else cutOff++
    }),
  )
  return { cells, cutOff }
}
