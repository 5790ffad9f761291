// Findings of a differential test collected by kind over all its cases, so that each kind is asserted
// by its own test and one finding does not hide another.

/** The findings by kind: one line of text each. */
export type Findings = Map<string, string[]>;

export function note(findings: Findings, kind: string, text: string): void {
  const list = findings.get(kind) ?? [];
  list.push(text);
  findings.set(kind, list);
}

/** How many findings of these kinds. */
export function count(findings: Findings, kinds: readonly string[]): number {
  return kinds.reduce((n, kind) => n + (findings.get(kind)?.length ?? 0), 0);
}

/** The first `limit` findings of each kind, a line each, for a failure message. */
export function show(findings: Findings, kinds: readonly string[], limit: number): string {
  return kinds
    .flatMap((kind) => (findings.get(kind) ?? []).slice(0, limit).map((text) => `  [${kind}] ${text}`))
    .join('\n');
}
