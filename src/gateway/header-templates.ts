// add-headers values that name nginx variables (`X-Request-ID: $req_id`, `X-Served-By: $hostname`,
// `X-Upstream: $upstream_addr`): ingress-nginx writes them into more_set_headers, which nginx expands
// when the head is written, so keepip expands them there too, with the access log's variables.
// custom-headers values stay as written: ingress-nginx escapes their `$` (escapeLiteralDollar). Pure.
import {
  type AccessLogFormatter,
  type AccessLogVars,
  compileValueTemplate,
  describeLogFormat,
  escapeControlBytes,
} from './access-log.ts';

/** One add-headers field whose value names variables. */
export interface HeaderTemplate {
  /** The lower-case field name. */
  readonly name: string;
  /** The value as the ConfigMap wrote it (its UTF-8 as latin1 bytes, as a head carries it). */
  readonly template: string;
  readonly expand: AccessLogFormatter;
}

/** Whether `value` names a variable (a lone `$` is text). */
export function namesVariables(value: string): boolean {
  return value.includes('$') && describeLogFormat(value).variables.length > 0;
}

/** The variables of `value` keepip does not know (nginx would refuse to load it): they expand to "". */
export function unknownVariablesOf(value: string): string[] {
  return describeLogFormat(value).unknown;
}

const WIDE_CHAR = /[^\x00-\xff]/;

/**
 * A variable's value as a head can carry it: control bytes as `\xHH` (a decoded `%0D%0A` in $uri
 * would otherwise split the response, which nginx lets happen), text beyond latin1 as its UTF-8 bytes.
 */
function sendable(value: string): string {
  const text = escapeControlBytes(value);
  return WIDE_CHAR.test(text) ? Buffer.from(text, 'utf8').toString('latin1') : text;
}

export function compileHeaderTemplate(name: string, template: string): HeaderTemplate {
  return { name, template, expand: compileValueTemplate(template, sendable) };
}

/** Each template's value on `out`; one that expands to "" sets none (more_set_headers clears it). */
export function applyHeaderTemplates(
  templates: readonly HeaderTemplate[],
  vars: AccessLogVars,
  out: Record<string, string>,
): void {
  for (const { name, expand } of templates) {
    const value = expand(vars);
    if (value !== '') out[name] = value;
  }
}
