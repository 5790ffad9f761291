// Times as nginx prints them in its logs and variables ($time_local, $time_iso8601, $msec,
// $request_time, the error log's), shared by the access log, the stream log and the request variables
// (src/gateway/access/nginx-vars.ts). Pure.

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];

function pad2(n: number): string {
  return n < 10 ? `0${n}` : `${n}`;
}

function tzOffset(d: Date, withColon: boolean): string {
  const off = -d.getTimezoneOffset();
  const sign = off < 0 ? '-' : '+';
  const abs = Math.abs(off);
  return `${sign}${pad2(Math.floor(abs / 60))}${withColon ? ':' : ''}${pad2(abs % 60)}`;
}

function toDate(date: Date | number): Date {
  return typeof date === 'number' ? new Date(date) : date;
}

/** nginx $time_local in the local time zone: `19/Mar/2025:11:00:37 +0000`. */
export function formatTimeLocal(date: Date | number): string {
  const d = toDate(date);
  return (
    `${pad2(d.getDate())}/${MONTHS[d.getMonth()]}/${d.getFullYear()}:` +
    `${pad2(d.getHours())}:${pad2(d.getMinutes())}:${pad2(d.getSeconds())} ${tzOffset(d, false)}`
  );
}

/** nginx $time_iso8601 in the local time zone: `2025-03-19T11:00:37+00:00`. */
export function formatTimeIso8601(date: Date | number): string {
  const d = toDate(date);
  return (
    `${d.getFullYear()}-${pad2(d.getMonth() + 1)}-${pad2(d.getDate())}T` +
    `${pad2(d.getHours())}:${pad2(d.getMinutes())}:${pad2(d.getSeconds())}${tzOffset(d, true)}`
  );
}

/** nginx's error log time: `2025/03/19 10:01:03`. */
export function formatErrorLogTime(date: Date | number): string {
  const d = toDate(date);
  return (
    `${d.getFullYear()}/${pad2(d.getMonth() + 1)}/${pad2(d.getDate())} ` +
    `${pad2(d.getHours())}:${pad2(d.getMinutes())}:${pad2(d.getSeconds())}`
  );
}

// Formatting a date costs far more than a log line's other work; lines come in bursts within one
// second, so each representation is cached per second.
export function perSecondCache(format: (ms: number) => string): (ms: number) => string {
  let second = Number.NaN;
  let text = '';
  return (ms) => {
    const s = Math.floor(ms / 1000);
    if (s !== second) {
      second = s;
      text = format(s * 1000);
    }
    return text;
  };
}

/** Seconds with 3 decimals from milliseconds, as nginx prints $request_time. */
export function formatMsAsSeconds(ms: number): string {
  const whole = ms > 0 ? Math.floor(ms) : 0;
  const rest = whole % 1000;
  return `${(whole - rest) / 1000}.${rest < 10 ? '00' : rest < 100 ? '0' : ''}${rest}`;
}
