// proxy-request-buffering and client-body-buffer-size, as annotations (per location) and controller
// ConfigMap keys (their defaults). ingress-nginx writes them into nginx's proxy_request_buffering
// (default "on": the whole body is read before the backend is contacted) and client_body_buffer_size
// (default 8k: what of it is kept in memory, the rest going to a temporary file); the gateway does the
// same (src/gateway/request-body-buffer.ts). Values are checked as ingress-nginx checks them:
//   proxy-request-buffering  "on" or "off", spaces trimmed, case-sensitive (ValidateOptions);
//   client-body-buffer-size  digits and an optional k, K, m or M: the template writes the directive
//                            only for such a size (isValidByteSize), so "1b" or "1g" leaves the default.
// A bad value is a warning and the default (the ConfigMap's, for an annotation) applies.
import type { GatewaySettings, LocationModel } from '../config/model.ts';
import { nginxArguments } from '../config/nginx-token.ts';
import { isIngressNginxAnnotationSize, trimGoSpace } from './values.ts';

export const BODY_BUFFERING_KEYS: readonly string[] = ['proxy-request-buffering', 'client-body-buffer-size'];

/** ingress-nginx's client-body-buffer-size: "8k". */
export const DEFAULT_CLIENT_BODY_BUFFER_BYTES = 8 * 1024;

/** nginx takes sizes as an off_t-free size_t; beyond a gibibyte is a typo, not a memory setting. */
const MAX_BUFFER_BYTES = 1024 ** 3;

const SIZE = /^([0-9]{1,10})([kKmM]?)$/;

export interface BodyBuffering {
  /** proxy-request-buffering: true on, false off; absent: not set here. */
  requestBuffering?: boolean;
  /** client-body-buffer-size in bytes; absent: not set here. */
  clientBodyBufferBytes?: number;
}

export interface BodyBufferingSink {
  invalid(key: string, value: string, expected: string, kept: string): void;
}

/**
 * client-body-buffer-size as nginx reads it for this directive; null when ingress-nginx would not
 * write it or nginx would refuse it. The ConfigMap's is written as it is (nginx's lexer splits it: one
 * word); an annotation's as ingress-nginx normalized it (Go's TrimSpace), then written only when
 * isValidByteSize takes it.
 */
export function parseBufferSize(text: string, from: 'annotation' | 'configmap'): number | null {
  const words = from === 'configmap' ? nginxArguments(text) : [trimGoSpace(text)];
  if (words?.length !== 1) return null;
  const m = SIZE.exec(words[0]!);
  if (m === null) return null;
  const unit = m[2] === '' ? 1 : m[2]!.toLowerCase() === 'k' ? 1024 : 1024 ** 2;
  const bytes = Number(m[1]) * unit;
  return bytes <= MAX_BUFFER_BYTES ? bytes : null;
}

/**
 * proxy-request-buffering as ingress-nginx has it: an annotation through ValidateOptions (trimmed,
 * with case: "Off" is refused); the ConfigMap's written as it is, nginx reading on/off without case.
 */
function bufferingMode(raw: string, from: 'annotation' | 'configmap'): 'on' | 'off' | null {
  const words = from === 'annotation' ? [trimGoSpace(raw)] : nginxArguments(raw);
  const value = words?.length === 1 ? words[0]! : '';
  const mode = from === 'annotation' ? value : value.toLowerCase();
  return mode === 'on' || mode === 'off' ? mode : null;
}

/**
 * Reads both keys through `get`, from an Ingress's annotations or the ConfigMap's data (which
 * ingress-nginx reads differently: its annotation validators see the raw value); `kept` names what
 * applies instead.
 */
export function readBodyBuffering(
  get: (key: string) => string | undefined,
  sink: BodyBufferingSink,
  kept: { buffering: string; size: string },
  from: 'annotation' | 'configmap',
): BodyBuffering {
  const out: BodyBuffering = {};
  const raw = get('proxy-request-buffering');
  if (raw !== undefined) {
    const mode = bufferingMode(raw, from);
    if (mode !== null) out.requestBuffering = mode === 'on';
    else sink.invalid('proxy-request-buffering', raw, '"on" or "off"', kept.buffering);
  }
  const size = get('client-body-buffer-size');
  if (size !== undefined) {
    // ingress-nginx's SizeRegex (spaces removed): a tab or line break is refused, the ConfigMap's applies.
    const valid = from === 'configmap' || isIngressNginxAnnotationSize(size);
    const bytes = valid ? parseBufferSize(size, from) : null;
    if (bytes !== null) out.clientBodyBufferBytes = bytes;
    else
      sink.invalid(
        'client-body-buffer-size',
        size,
        'a size such as "8k", "16K", "1m" or "1000" (digits and an optional k or m)',
        kept.size,
      );
  }
  return out;
}

/** The ConfigMap's keys into the settings (the defaults of the annotations). */
export function applyBodyBufferingSettings(
  data: Readonly<Record<string, string>>,
  settings: GatewaySettings,
  sink: BodyBufferingSink,
): void {
  const read = readBodyBuffering((key) => data[key], sink, { buffering: 'on', size: '8k' }, 'configmap');
  if (read.requestBuffering !== undefined) settings.requestBuffering = read.requestBuffering;
  if (read.clientBodyBufferBytes !== undefined) settings.clientBodyBufferBytes = read.clientBodyBufferBytes;
}

/**
 * A location's fields: the Ingress's values over the ConfigMap's. Only what differs from
 * ingress-nginx's defaults is written (buffering off; a size other than 8k), so that a location
 * without them reads as the defaults.
 */
export function bodyBufferingFor(
  own: BodyBuffering,
  settings: GatewaySettings,
): Pick<LocationModel, 'requestBuffering' | 'clientBodyBufferBytes'> {
  const out: Pick<LocationModel, 'requestBuffering' | 'clientBodyBufferBytes'> = {};
  if ((own.requestBuffering ?? settings.requestBuffering ?? true) === false) out.requestBuffering = false;
  const size =
    own.clientBodyBufferBytes ?? settings.clientBodyBufferBytes ?? DEFAULT_CLIENT_BODY_BUFFER_BYTES;
  if (size !== DEFAULT_CLIENT_BODY_BUFFER_BYTES) out.clientBodyBufferBytes = size;
  return out;
}
