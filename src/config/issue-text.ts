// How a ConfigIssue reads to an operator: where it comes from (file, document, object, field), the
// message and its code. One wording for every command that reports issues (gateway, lb, up).
import type { ConfigIssue, Origin } from './model.ts';

/** "file, document 2 (Kind namespace/name)": the parts the origin has. */
export function describeOrigin(origin: Origin): string {
  const doc = origin.document > 0 ? `, document ${origin.document}` : '';
  const obj = origin.kind ? ` (${origin.kind} ${origin.namespace}/${origin.name})` : '';
  return `${origin.file}${doc}${obj}`;
}

/** Messages quote values as written: past this, a value of megabytes would make a line of megabytes. */
const LONGEST_MESSAGE = 2_000;

/** An issue's message as logs, Events and admission answers show it: at most LONGEST_MESSAGE characters. */
export function issueMessage(issue: ConfigIssue): string {
  const text = issue.message;
  if (text.length <= LONGEST_MESSAGE) return text;
  return `${text.slice(0, LONGEST_MESSAGE)}… (${text.length - LONGEST_MESSAGE} more characters)`;
}

/** "<origin> <field>: <message> [CODE]". */
export function describeIssue(issue: ConfigIssue): string {
  const where = issue.origin === undefined ? '' : describeOrigin(issue.origin);
  const message = issueMessage(issue);
  // Loader and translator messages already start with the origin; do not say it twice.
  if (where !== '' && message.startsWith(where)) return `${message} [${issue.code}]`;
  const at = [where, issue.field ?? ''].filter((part) => part !== '').join(' ');
  return `${at === '' ? '' : `${at}: `}${message} [${issue.code}]`;
}
