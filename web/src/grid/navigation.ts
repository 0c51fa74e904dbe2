// Excel-like movement between the editable cells of the grid. Positions are (row, col) indices into
// the grid of editable cells only (gap columns), so read-only cells are never a stop.

export interface Pos {
  row: number
  col: number
}

export interface Bounds {
  rows: number
  cols: number
}

export type Move = 'up' | 'down' | 'left' | 'right' | 'next' | 'prev'

/** Where a key press goes, or null when the key is left to the input (typing, caret moves). */
export function moveFor(key: string, shift: boolean, caretAtStart: boolean, caretAtEnd: boolean): Move | null {
  switch (key) {
    case 'Tab':
      return shift ? 'prev' : 'next'
    case 'Enter':
      return shift ? 'up' : 'down'
    case 'ArrowUp':
      return 'up'
    case 'ArrowDown':
      return 'down'
    case 'ArrowLeft':
      return caretAtStart ? 'left' : null
    case 'ArrowRight':
      return caretAtEnd ? 'right' : null
    default:
      return null
  }
}

/** The next position; it stays inside the grid. Tab wraps to the next row's first cell, like Excel. */
export function step(pos: Pos, move: Move, b: Bounds): Pos {
  if (b.rows === 0 || b.cols === 0) return pos
  const clampRow = (r: number) => Math.min(Math.max(r, 0), b.rows - 1)
  const clampCol = (c: number) => Math.min(Math.max(c, 0), b.cols - 1)
  switch (move) {
    case 'up':
      return { row: clampRow(pos.row - 1), col: pos.col }
    case 'down':
      return { row: clampRow(pos.row + 1), col: pos.col }
    case 'left':
      return { row: pos.row, col: clampCol(pos.col - 1) }
    case 'right':
      return { row: pos.row, col: clampCol(pos.col + 1) }
    case 'next':
      if (pos.col < b.cols - 1) return { row: pos.row, col: pos.col + 1 }
      return pos.row < b.rows - 1 ? { row: pos.row + 1, col: 0 } : pos
    case 'prev':
      if (pos.col > 0) return { row: pos.row, col: pos.col - 1 }
      return pos.row > 0 ? { row: pos.row - 1, col: b.cols - 1 } : pos
  }
}
