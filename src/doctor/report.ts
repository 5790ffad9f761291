// The doctor's two outputs: text a person reads at a glance (verdict first, then the hop diagram, then
// findings with their fixes) and JSON with a documented, stable schema (docs/doctor.md).
import type { DoctorReport, Finding } from './types.ts';

export const JSON_SCHEMA_ID = 'keepip.doctor/v1';

export function renderJson(report: DoctorReport): string {
  const sim = report.simulation;
  const body = {
    schema: JSON_SCHEMA_ID,
    mode: report.mode,
    verdict: report.verdict,
    summary: report.summary,
    status: report.status,
    decidedBy: report.decidedBy,
    via: report.via,
    loadBalancer: report.loadBalancer,
    request: sim ? { client: sim.client, host: sim.host, path: sim.path, scheme: sim.scheme } : null,
    gatewayLogsAddress: sim?.gatewayLogsAddress ?? null,
    hops: report.hops.map((h) => ({ name: h.name, sees: h.sees, detail: h.detail })),
    audit: report.audit,
    findings: report.findings.map(findingJson),
    // Findings the fixes above reveal once applied (follow-fix.ts), with their own fixes.
    afterFix: (report.afterFix ?? []).map(findingJson),
    configIssues: report.configIssues,
    clientAnswer: report.clientAnswer ?? null,
    exitCode: report.exitCode,
  };
  return `${JSON.stringify(body, null, 2)}\n`;
}

function findingJson(f: Finding) {
  return {
    id: f.id,
    severity: f.severity,
    hops: f.hops,
    message: f.message,
    subject: f.subject ?? null,
    loadBalancer: f.loadBalancer ?? null,
    fix: f.fix,
  };
}

/** Wraps a paragraph at `width` columns, every line indented by `indent`. */
export function wrap(text: string, width: number, indent: string): string {
  const lines: string[] = [];
  let line = '';
  for (const word of text.split(/\s+/).filter((w) => w !== '')) {
    if (line !== '' && indent.length + line.length + 1 + word.length > width) {
      lines.push(indent + line);
      line = word;
    } else {
      line = line === '' ? word : `${line} ${word}`;
    }
  }
  if (line !== '') lines.push(indent + line);
  return lines.join('\n');
}

const MARK = { error: 'x', warning: '!', info: 'i' } as const;

function renderFinding(f: Finding): string {
  const subject = f.subject ? `  [${f.subject.kind} ${f.subject.namespace}/${f.subject.name}]` : '';
  const out = [`${MARK[f.severity]} ${f.severity.toUpperCase()} ${f.id}  (${f.hops.join(' -> ')})${subject}`];
  out.push(wrap(f.message, 100, '    '));
  if (f.fix === null) {
    out.push('    Fix: no manifest change can fix this by itself; see the explanation.');
  } else {
    out.push(wrap(`Fix: ${f.fix.summary}`, 100, '    '));
    for (const p of f.fix.patches) {
      out.push(`      # ${p.target.kind} ${p.target.namespace}/${p.target.name}`);
      for (const line of p.yaml.split('\n')) out.push(`      ${line}`);
      out.push(`      $ ${p.kubectl}`);
    }
  }
  return out.join('\n');
}

/** How the listener offers its protocols: ALPN on TLS; on plain HTTP, h2 only by its preface. */
function offeredBy(scheme: string, protocols: readonly string[]): string {
  if (scheme === 'https') return 'ALPN, use-http2';
  return protocols.includes('h2') ? 'h2 with prior knowledge, use-http2' : 'ALPN';
}

export function renderText(report: DoctorReport): string {
  const out: string[] = [];
  const sim = report.simulation;
  if (sim !== null) {
    out.push(`keepip doctor: ${report.summary}`);
    out.push(
      `  request: ${sim.scheme}://${sim.host}${sim.path} from ${sim.client}, via ${sim.via}${report.loadBalancer ? `, load balancer ${report.loadBalancer}` : ''}`,
    );
    out.push('');
    const width = Math.max(...report.hops.map((h) => h.name.length));
    const seenWidth = Math.max(...report.hops.map((h) => (h.sees ?? '-').length));
    report.hops.forEach((hop, i) => {
      if (i > 0) out.push(`  ${' '.repeat(width)}  |`);
      const head = `  ${hop.name.padEnd(width)}  ${(hop.sees ?? '-').padEnd(seenWidth)}  `;
      out.push(`${head}${wrap(hop.detail, 110, ' '.repeat(head.length)).trimStart()}`);
    });
    const relayed = sim.passthrough === true && sim.outcome === 'allowed';
    const answered = sim.status ?? (relayed ? "the backend's own answer" : 'no response');
    out.push(`  ${' '.repeat(width)}  => ${answered} (${sim.outcome})`);
    const answer = report.clientAnswer;
    if (answer && (sim.passthrough !== true || relayed)) {
      const offered =
        answer.protocols.length === 0
          ? 'by the backend (ssl-passthrough: keepip does not answer the TLS handshake)'
          : `${answer.protocols.join(', ')} (${offeredBy(sim.scheme, answer.protocols)})`;
      out.push(`  ${' '.repeat(width)}     offered: ${offered}`);
      if (answer.grpc !== null)
        out.push(wrap(`gRPC: ${answer.grpc.text}`, 110, `  ${' '.repeat(width)}     `));
    }
  } else {
    out.push(`keepip doctor: ${report.verdict === 'ok' ? 'OK' : 'PROBLEMS'}: ${report.summary}`);
    out.push(
      `  clients via ${report.via}${report.loadBalancer ? `, load balancer ${report.loadBalancer}` : ', no load balancer'}`,
    );
    if (report.audit.length > 0) {
      out.push('');
      out.push('Access lists:');
      for (const a of report.audit) {
        const lists = [
          a.allow ? `allow ${a.allow.join(',')}` : null,
          a.deny ? `deny ${a.deny.join(',')}` : null,
        ]
          .filter((x) => x !== null)
          .join('; ');
        out.push(
          `  ${a.recognised ? 'ok' : 'NO'}  ${a.ingress.namespace}/${a.ingress.name} ${a.host || '*'}${a.path}  ${lists || '(invalid)'}`,
        );
        out.push(wrap(a.note, 104, '      '));
      }
    }
  }
  out.push('');
  if (report.findings.length === 0) {
    out.push('No findings.');
  } else {
    const count = (s: string) => report.findings.filter((f) => f.severity === s).length;
    out.push(`Findings: ${count('error')} error(s), ${count('warning')} warning(s), ${count('info')} info`);
    for (const f of report.findings) {
      out.push('');
      out.push(renderFinding(f));
    }
  }
  const afterFix = report.afterFix ?? [];
  if (afterFix.length > 0) {
    out.push('');
    out.push(
      wrap(
        `Once those fixes are applied, ${afterFix.length} more finding(s) show, which the first ones hid: apply their fixes with them.`,
        110,
        '',
      ),
    );
    for (const f of afterFix) {
      out.push('');
      out.push(renderFinding(f));
    }
  }
  if (report.configIssues.length > 0) {
    out.push('');
    out.push('Manifest issues:');
    for (const i of report.configIssues) out.push(wrap(`${i.severity} ${i.code}: ${i.message}`, 104, '  '));
  }
  return `${out.join('\n')}\n`;
}
