// Go, transcribed: how ingress-nginx reads its controller ConfigMap (internal/ingress/controller/template/
// configmap.go ReadConfig, through mapstructure v1.5.0 WeaklyTypedInput): strconv.ParseBool as
// mapstructure's decodeBool uses it, and strconv.ParseInt(s, 0, 64) (base 0) as its decodeInt calls it.
// configmap.go's splitAndTrimSpace (strings.FieldsFunc on `,`, then TrimSpace with Go's unicode.IsSpace)
// is splitAndTrimSpace in test/helpers/go-net.ts. Shared by
// test/k8s/configmap-validation-ingress-nginx.test.ts, test/security/scalar-values-differential-nginx.test.ts,
// test/helpers/go-annotation-validators.ts and test/k8s/go-reference.test.ts, which holds them against
// Go's own answers (test/fixtures/go-reference/vectors.json).

/** mapstructure v1.5.0 decodeBool with WeaklyTypedInput: strconv.ParseBool, "" is false, else the default. */
export function goBool(value: string, fallback: boolean): boolean {
  const parsed = { 1: true, t: true, T: true, TRUE: true, true: true, True: true }[value];
  if (parsed) return true;
  if (['0', 'f', 'F', 'FALSE', 'false', 'False', ''].includes(value)) return false;
  return fallback;
}

/** strconv.ParseInt(s, 0, 64) as mapstructure v1.5.0 decodeInt calls it ("" is "0"); null on error. */
export function goParseInt0(value: string): bigint | null {
  const text = value === '' ? '0' : value;
  const m = /^([+-]?)(0[xX]|0[bB]|0[oO]|0(?=.))?(.+)$/.exec(text);
  if (!m) return null;
  const [, sign, prefix = '', body] = m;
  const radix = prefix === '' ? 10 : /x/i.test(prefix) ? 16 : /b/i.test(prefix) ? 2 : 8;
  const digit = { 2: '[01]', 8: '[0-7]', 10: '[0-9]', 16: '[0-9a-fA-F]' }[radix];
  // underscoreOK: underscores only between digits, or right after a base prefix.
  const shape = new RegExp(`^${prefix === '' ? '' : '_?'}${digit}+(_${digit}+)*$`);
  if (!shape.test(body!)) return null;
  const digits = body!.replaceAll('_', '');
  const magnitude = [...digits].reduce((n, c) => n * BigInt(radix) + BigInt(Number.parseInt(c, 16)), 0n);
  const n = sign === '-' ? -magnitude : magnitude;
  return n >= 2n ** 63n || n < -(2n ** 63n) ? null : n;
}

/**
 * Integer values of a ConfigMap key in each form mapstructure's ParseInt base 0 reads apart (signs,
 * prefixes, underscores, blanks, units, int64 edges): configmap-validation's and scalar-values' list.
 */
export const INT_VALUES = [
  '30',
  ' 500',
  '+5',
  '05',
  '010',
  '08',
  '0x10',
  '1_0',
  '5s',
  '',
  '  ',
  ' 5',
  '5 ',
  '-5',
  '0',
  '99999999999',
  '9223372036854775808',
  '3.5',
  '1e3',
];

/** Boolean values in the forms ParseBool takes, refuses or would take trimmed: both tests' list. */
export const BOOL_VALUES = [
  'true',
  'false',
  'True',
  'TRUE',
  'T',
  't',
  '1',
  '0',
  'F',
  'no',
  'yes',
  'on',
  ' true',
  'true ',
  '',
  '  ',
  'tRuE',
];
