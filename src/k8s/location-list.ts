// ingress-nginx's isLocationInLocationList, for the ConfigMap keys that exempt locations by path
// (no-auth-locations, no-tls-redirect-locations): a comma-separated list of prefixes, each without the
// spaces around it, matched against the Ingress path of the location (not the request's path). Pure.

/**
 * Whether some entry of `list` is a prefix of `path`. Only spaces are trimmed, as Go's
 * `strings.Trim(item, " ")`: an entry after a line break (a YAML block) keeps it, and exempts nothing.
 */
export function isLocationInLocationList(path: string, list: string | readonly string[]): boolean {
  const entries = typeof list === 'string' ? list.split(',') : list;
  return entries.some((item) => {
    // A loop, not `/^ +| +$/g`, which is quadratic in a run of spaces inside the entry.
    let start = 0;
    let end = item.length;
    while (start < end && item[start] === ' ') start++;
    while (end > start && item[end - 1] === ' ') end--;
    const entry = item.slice(start, end);
    return entry !== '' && path.startsWith(entry);
  });
}
