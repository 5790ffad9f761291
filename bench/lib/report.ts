// The record of one benchmark run and its markdown rendering. Pure: run.ts gathers, this formats.
import type { BenchMeasurement, SuiteResult } from '../types.ts';
import { type MachineInfo, machineLine } from './machine.ts';

export interface SuiteRecord {
  name: string;
  description: string;
  durationSeconds: number;
  /** Absent when the suite threw; `thrown` says why. */
  result?: SuiteResult;
  thrown?: string;
}

export interface BenchRun {
  /** ISO 8601, when the run started. */
  date: string;
  mode: 'quick' | 'full';
  machine: MachineInfo;
  suites: SuiteRecord[];
  /** Suites asked for (by name or group) that have no module yet. */
  missing: string[];
  /** True when no suite threw or reported an error. */
  ok: boolean;
}

export function suiteFailed(record: SuiteRecord): boolean {
  return record.thrown !== undefined || (record.result?.errors.length ?? 0) > 0;
}

export function formatValue(value: number): string {
  if (!Number.isFinite(value)) return String(value);
  if (Math.abs(value) >= 1000) return Math.round(value).toLocaleString('en-US');
  if (Math.abs(value) >= 100) return String(Math.round(value));
  return String(Number(value.toPrecision(3)));
}

function cell(text: string): string {
  return text.replace(/\|/g, '\\|').replace(/\n/g, ' ');
}

/** Measurements pivoted: one row per (case, system), one column per metric, in order of appearance. */
export function measurementTable(measurements: readonly BenchMeasurement[]): string[] {
  if (measurements.length === 0) return [];
  const metrics: string[] = [];
  const rows = new Map<string, { scenario: string; system: string; values: Map<string, number> }>();
  for (const m of measurements) {
    if (!metrics.includes(m.metric)) metrics.push(m.metric);
    const key = `${m.case}\u0000${m.system}`;
    let row = rows.get(key);
    if (!row) {
      row = { scenario: m.case, system: m.system, values: new Map() };
      rows.set(key, row);
    }
    row.values.set(m.metric, m.value);
  }
  return [
    `| case | system | ${metrics.map(cell).join(' | ')} |`,
    `|---|---|${metrics.map(() => '---:').join('|')}|`,
    ...[...rows.values()].map(
      (row) =>
        `| ${cell(row.scenario)} | ${cell(row.system)} | ${metrics
          .map((metric) => {
            const value = row.values.get(metric);
            return value === undefined ? '–' : formatValue(value);
          })
          .join(' | ')} |`,
    ),
  ];
}

export function renderSuite(record: SuiteRecord): string[] {
  const lines = [`### ${record.name}: ${record.description} (${Math.round(record.durationSeconds)} s)`, ''];
  if (record.thrown !== undefined) {
    lines.push(`**FAILED:** ${cell(record.thrown)}`, '');
    return lines;
  }
  const result = record.result!;
  const table = measurementTable(result.measurements);
  if (table.length > 0) lines.push(...table, '');
  if (result.ratios.length > 0) {
    lines.push('| ratio | value | target | met |', '|---|---:|---|---|');
    for (const ratio of result.ratios) {
      const met = ratio.met === undefined ? '' : ratio.met ? 'yes' : '**no**';
      lines.push(
        `| ${cell(ratio.label)} | ${formatValue(ratio.value)} | ${cell(ratio.target ?? '')} | ${met} |`,
      );
    }
    lines.push('');
  }
  if (result.errors.length > 0) {
    lines.push('**Errors (this run does not count):**', '');
    for (const error of result.errors) lines.push(`- ${cell(error).slice(0, 600)}`);
    lines.push('');
  }
  if (result.notes && result.notes.length > 0) {
    for (const note of result.notes) lines.push(`- ${cell(note)}`);
    lines.push('');
  }
  return lines;
}

export function renderMarkdown(run: BenchRun): string {
  const lines = [
    `## keepip benchmark, ${run.date} (${run.mode} mode): ${run.ok ? 'all suites passed' : '**FAILED**'}`,
    '',
    `Machine: ${machineLine(run.machine)}`,
    '',
  ];
  if (run.missing.length > 0)
    lines.push(`Not present yet (no bench/suites/<name>.ts): ${run.missing.join(', ')}`, '');
  for (const record of run.suites) lines.push(...renderSuite(record));
  return `${lines.join('\n').trimEnd()}\n`;
}
