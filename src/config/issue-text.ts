// How a ConfigIssue reads to an operator: where it comes from (file, document, object, field), the
// message and its code. One wording for every command that reports issues (gateway, lb, up).
import type { ConfigIssue, Origin } from './model.ts';

/** "file, document 2 (Kind namespace/name)": the parts the origin has. */
export function describeOrigin(origin: Origin): string {
  const doc = origin.document > 0 ? `, document ${origin.document}` : '';
  const obj = origin.kind ? ` (${origin.kind} ${origin.namespace}/${origin.name})` : '';
  return `${origin.file}${doc}${obj}`;
}

/** "<origin> <field>: <message> [CODE]". */
export function describeIssue(issue: ConfigIssue): string {
  const where = issue.origin === undefined ? '' : describeOrigin(issue.origin);
  // Loader and translator messages already start with the origin; do not say it twice.
  if (where !== '' && issue.message.startsWith(where)) return `${issue.message} [${issue.code}]`;
  const at = [where, issue.field ?? ''].filter((part) => part !== '').join(' ');
  return `${at === '' ? '' : `${at}: `}${issue.message} [${issue.code}]`;
}
