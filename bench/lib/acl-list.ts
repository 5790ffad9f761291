// Allowlists for the ACL benchmarks: `count - 1` distinct prefixes that never match a loopback client,
// then the client's own rule last, so nginx (which scans allow lines in order) walks the whole list.

/** The i-th filler prefix: alternately a /32 in 10.0.0.0/8 and a /24 in 11.0.0.0/8, all distinct. */
export function fillerCidr(i: number): string {
  const n = i >> 1;
  if (i % 2 === 0) return `10.${(n >> 16) & 255}.${(n >> 8) & 255}.${n & 255}/32`;
  return `11.${(n >> 8) & 255}.${n & 255}.0/24`;
}

/** `count` rules: fillers first, `clientCidr` last. Up to 2 × 65,536 fillers stay distinct. */
export function allowList(count: number, clientCidr: string): string[] {
  if (count < 1 || count > 131_073) throw new RangeError(`allowList: ${count} rules is out of range`);
  const list: string[] = [];
  for (let i = 0; i < count - 1; i++) list.push(fillerCidr(i));
  list.push(clientCidr);
  return list;
}
