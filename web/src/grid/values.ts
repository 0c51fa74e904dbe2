// From what the clerk typed to the JSON value the API expects for the column's type. Anything that
// does not parse goes to the API as text, so the API's own Chinese validation message is shown.

const TRUE = new Set(['是', 'true', '1', 'y', 'yes', '√', '有'])
const FALSE = new Set(['否', 'false', '0', 'n', 'no', '×', '无'])

export function toApiValue(text: string, type: string): unknown {
  const t = text.trim()
  if (t === '') return null
  switch (type) {
    case 'integer':
      return /^[-+]?\d+$/.test(t) ? Number(t) : t
    case 'decimal': {
      const n = t.replace(/,/g, '')
      return /^[-+]?(\d+\.?\d*|\.\d+)$/.test(n) ? n : t
    }
    case 'boolean': {
      const low = t.toLowerCase()
      if (TRUE.has(low)) return true
      if (FALSE.has(low)) return false
      return t
    }
    default:
      return t
  }
}

export function fromApiValue(v: unknown): string {
  if (v === null || v === undefined) return ''
  if (v === true) return '是'
  if (v === false) return '否'
  return String(v)
}
