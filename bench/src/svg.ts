/**
 * The chart: horizontal bars of each case beside its floor, with the ratios, and the targets. Plain
 * SVG written by hand, readable on GitHub in light and dark themes (its own white background).
 */
import type { ReportContext } from './render.js'
import type { Summary } from './summary.js'

const WIDTH = 1040
const LABEL_WIDTH = 300
const BAR_X = LABEL_WIDTH + 10
const BAR_MAX = 340
const ROW = 26
const FONT = 'font-family="ui-sans-serif, system-ui, -apple-system, Segoe UI, Helvetica, Arial, sans-serif"'
const COLOR = {
  case: '#2563eb',
  floor: '#9ca3af',
  pass: '#15803d',
  fail: '#b91c1c',
  text: '#111827',
  muted: '#6b7280',
}

function esc(text: string): string {
  return text
    .replaceAll('&', '&amp;')
    .replaceAll('<', '&lt;')
    .replaceAll('>', '&gt;')
    .replaceAll('"', '&quot;')
}

function fmt(n: number, digits = 0): string {
  return n.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits })
}

class Canvas {
  readonly parts: string[] = []
  y = 0

  text(x: number, y: number, content: string, attrs = ''): void {
    this.parts.push(`<text x="${x}" y="${y}" ${attrs}>${esc(content)}</text>`)
  }

  heading(content: string, note?: string): void {
    this.y += 30
    this.text(16, this.y, content, `font-size="15" font-weight="600" fill="${COLOR.text}"`)
    if (note !== undefined) {
      this.y += 17
      this.text(16, this.y, note, `font-size="11.5" fill="${COLOR.muted}"`)
    }
    this.y += 10
  }

  /** One row: a label and up to two bars (floor above case), with a note after the longer one. */
  bars(label: string, bars: { value: number; color: string }[], scale: number, note: string): void {
    const top = this.y + 4
    this.text(LABEL_WIDTH, top + 13, label, `font-size="12" text-anchor="end" fill="${COLOR.text}"`)
    let end = BAR_X
    const height = bars.length > 1 ? 8 : 14
    bars.forEach((bar, i) => {
      const w = Math.max(1, (bar.value / scale) * BAR_MAX)
      this.parts.push(
        `<rect x="${BAR_X}" y="${top + 2 + i * (height + 2)}" width="${w.toFixed(1)}" height="${height}" rx="2" fill="${bar.color}"/>`,
      )
      end = Math.max(end, BAR_X + w)
    })
    this.text(end + 6, top + 13, note, `font-size="11.5" fill="${COLOR.text}"`)
    this.y += ROW
  }
}

/** The chart for bench/results/latest.svg (and docs/bench.svg). */
export function renderSvg(summary: Summary, ctx: ReportContext, date: string): string {
  const c = new Canvas()
  c.y = 8
  c.y += 22
  c.text(
    16,
    c.y,
    `pglock benchmark — medians of ${ctx.rounds} rounds (${date})`,
    `font-size="18" font-weight="700" fill="${COLOR.text}"`,
  )
  const m = ctx.machine
  c.y += 18
  c.text(
    16,
    c.y,
    `${m.cpuModel}, ${m.cores} cores · Node.js ${m.node} · PostgreSQL ${m.postgres} · pglock ${m.commit}${ctx.quick ? ' · QUICK (smoke) RUN' : ''}`,
    `font-size="12" fill="${COLOR.muted}"`,
  )
  c.y += 16
  c.parts.push(
    `<rect x="16" y="${c.y - 9}" width="10" height="10" fill="${COLOR.floor}"/>`,
    `<rect x="150" y="${c.y - 9}" width="10" height="10" fill="${COLOR.case}"/>`,
  )
  c.text(30, c.y, 'raw driver (floor)', `font-size="12" fill="${COLOR.text}"`)
  c.text(164, c.y, 'pglock (or the library measured)', `font-size="12" fill="${COLOR.text}"`)

  const paired = summary.uncontended.filter(
    (r) => r.floorId !== undefined && r.id !== 'advisory-lock/lock-unlock' && r.usPerOp !== undefined,
  )
  if (paired.length > 0) {
    c.heading(
      'Uncontended: µs per operation (shorter is better)',
      'session operations against pool checkout + lock + unlock + release; transaction acquire against BEGIN + xact lock + COMMIT on the same driver',
    )
    const scale = Math.max(...paired.flatMap((r) => [r.usPerOp ?? 0, r.floorUsPerOp ?? 0]))
    for (const r of paired) {
      // A control is the floor measured against itself.
      const control = r.id.startsWith('control/')
      c.bars(
        r.short,
        [
          { value: r.floorUsPerOp ?? 0, color: COLOR.floor },
          { value: r.usPerOp ?? 0, color: control ? COLOR.floor : COLOR.case },
        ],
        scale,
        `${fmt(r.usPerOp ?? 0, 0)} µs vs ${fmt(r.floorUsPerOp ?? 0, 0)} µs · ${r.ratio === undefined ? 'n/a' : `${r.ratio.toFixed(2)}×`}`,
      )
    }
  }

  const advisory = summary.uncontended.find((r) => r.id === 'advisory-lock/lock-unlock')
  if (advisory?.usPerOp !== undefined && advisory.floorUsPerOp !== undefined) {
    c.heading('Uncontended lock + unlock: operations per second (longer is better)')
    const pglock = 1e6 / advisory.floorUsPerOp
    const other = 1e6 / advisory.usPerOp
    const scale = Math.max(pglock, other)
    c.bars('pglock pg: acquire + release', [{ value: pglock, color: COLOR.case }], scale, `${fmt(pglock)}/s`)
    c.bars(
      'advisory-lock 2.0.0: lock() + unlock()',
      [{ value: other, color: COLOR.floor }],
      scale,
      `${fmt(other)}/s · pglock ${advisory.ratio === undefined ? 'n/a' : `${advisory.ratio.toFixed(1)}×`} faster`,
    )
  }

  const contention = summary.contention.filter((r) => r.handoffsPerSec !== undefined)
  if (contention.length > 0) {
    c.heading(
      'Contention on one key: hand-offs per second (longer is better)',
      'hand-off = the lock passes to another worker; p99 = wait from calling acquire to holding; fewest–most acquisitions per worker (least fair round); ratios to raw',
    )
    const scale = Math.max(...contention.map((r) => r.handoffsPerSec ?? 0))
    for (const r of contention) {
      // A control is a raw floor too (measured against itself).
      const raw = r.floorId === undefined || r.id.includes('/control-')
      const ratios =
        r.floorId === undefined || r.handoffRatio === undefined
          ? ''
          : ` · ${r.handoffRatio.toFixed(2)}× raw, p99 ${r.p99Ratio?.toFixed(2) ?? 'n/a'}×`
      c.bars(
        r.short,
        [{ value: r.handoffsPerSec ?? 0, color: raw ? COLOR.floor : COLOR.case }],
        scale,
        `${fmt(r.handoffsPerSec ?? 0)}/s · p99 ${fmt(r.waitP99Ms ?? 0, 1)} ms · ${r.minPerWorker}–${r.maxPerWorker}/worker${ratios}`,
      )
    }
  }

  if (summary.targets.length > 0) {
    c.heading('Targets')
    for (const t of summary.targets) {
      const top = c.y + 4
      const result = t.pass === undefined ? 'NO DATA' : t.pass ? 'PASS' : 'FAIL'
      const color = t.pass === undefined ? COLOR.muted : t.pass ? COLOR.pass : COLOR.fail
      c.text(16, top + 12, result, `font-size="12" font-weight="700" fill="${color}"`)
      c.text(80, top + 12, t.name, `font-size="12" fill="${COLOR.text}"`)
      c.text(
        WIDTH - 16,
        top + 12,
        `${t.value}${t.rounds === '' ? '' : ` (rounds ${t.rounds})`}  (target ${t.target})`,
        `font-size="12" text-anchor="end" fill="${COLOR.text}"`,
      )
      c.y += 20
    }
  }

  const height = Math.ceil(c.y + 20)
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${WIDTH}" height="${height}" viewBox="0 0 ${WIDTH} ${height}" ${FONT}>`,
    // The accessible name of the chart (and what Biome's a11y rule asks for).
    '<title>pglock benchmark: pglock against the raw drivers, advisory-lock and a polling lock</title>',
    `<rect width="${WIDTH}" height="${height}" fill="#ffffff"/>`,
    ...c.parts,
    '</svg>',
    '',
  ].join('\n')
}
