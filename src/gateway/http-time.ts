// HTTP dates as nginx's ngx_parse_http_time reads them (RFC 9110 §5.6.7): the IMF-fixdate, the obsolete
// RFC 850 form and asctime's. Anything else is not a date (an Expires that is not one means "expired").
// Pure.

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
const MONTH = MONTHS.join('|');
const IMF_FIXDATE = new RegExp(`^[A-Za-z]{3}, (\\d{2}) (${MONTH}) (\\d{4}) (\\d{2}):(\\d{2}):(\\d{2}) GMT$`);
const RFC_850 = new RegExp(`^[A-Za-z]{6,9}, (\\d{2})-(${MONTH})-(\\d{2}) (\\d{2}):(\\d{2}):(\\d{2}) GMT$`);
const ASCTIME = new RegExp(`^[A-Za-z]{3} (${MONTH}) ([ \\d]\\d) (\\d{2}):(\\d{2}):(\\d{2}) (\\d{4})$`);

/** Milliseconds since the epoch, or null when `text` is not an HTTP date. */
export function parseHttpTime(text: string): number | null {
  let m = IMF_FIXDATE.exec(text);
  if (m !== null) return utc(m[3], m[2], m[1], m[4], m[5], m[6]);
  m = RFC_850.exec(text);
  if (m !== null) {
    // Two-digit years: 70-99 are 19xx, as nginx reads them.
    const year = Number(m[3]);
    return utc(String(year < 70 ? 2000 + year : 1900 + year), m[2], m[1], m[4], m[5], m[6]);
  }
  m = ASCTIME.exec(text);
  if (m !== null) return utc(m[6], m[1], (m[2] as string).trim(), m[3], m[4], m[5]);
  return null;
}

function utc(
  year: string | undefined,
  month: string | undefined,
  day: string | undefined,
  hour: string | undefined,
  minute: string | undefined,
  second: string | undefined,
): number | null {
  const [y, d, h, mi, s] = [year, day, hour, minute, second].map(Number) as number[];
  const mo = MONTHS.indexOf(month ?? '');
  if (d! < 1 || d! > 31 || h! > 23 || mi! > 59 || s! > 59) return null;
  const ms = Date.UTC(y!, mo, d!, h!, mi!, s!);
  // 31 Feb and the like: nginx refuses a day past the month's end.
  return new Date(ms).getUTCDate() === d ? ms : null;
}
