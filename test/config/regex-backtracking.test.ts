// Which Ingress regexes the load-time scan refuses (src/config/regex-backtracking.ts). Beyond the
// nested unbounded repeats, a regex that V8's linear-time fallback cannot take gets the stricter scan:
// one with a backreference or a lookaround, and, measured on Node 24, one whose counted repeats need
// more than 16 copies (`[0-9]{17}`, `{2,17}`, `{17,}`, `((x){5}){4}`): there `(a|aa){40}` (2^40 ways)
// and `.*.*.*x` would run on the backtracking engine without bound. Pure.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { backtrackingRisk } from '../../src/config/regex-backtracking.ts';

describe('the backtracking scan', () => {
  it('refuses a choice repeated by a count past what the linear-time engine takes', () => {
    for (const source of ['^(a|aa){40}$', '/alt/(a|aa){30}$', '^((a|aa){4}){5}$', '/(a?a?){17}'])
      assert.match(backtrackingRisk(source) ?? '', /counted repeat of more than 16/, source);
  });

  it('refuses the shapes the fallback would have bounded when a count over 16 takes the fallback away', () => {
    for (const source of [
      '^/a[0-9]{17}.*.*.*x',
      '^/a[0-9]{2,17}.*.*x',
      '^a{17}(a|a)*x',
      '^/(?:[0-9]{9}){2}.*.*x',
      '^([0-9]{5}){4}(b|b)*',
    ])
      assert.match(backtrackingRisk(source) ?? '', /linear-time regex engine cannot take/, source);
  });

  it('lets through what the fallback takes, and counted runs with nothing to backtrack over', () => {
    for (const source of [
      '^(a|aa){16}$',
      '^/a[0-9]{16}.*.*.*x',
      '^((a|aa){4}){4}$',
      '/static/[a-f0-9]{32}\\.js',
      '/assets/([a-z]+)/[a-f0-9]{64}/(.*)',
      '/api/v[0-9]{1,2}/(.*)',
      '/api(/|$)(.*)',
      '/x/[0-9]{17,}',
    ])
      assert.equal(backtrackingRisk(source), null, source);
  });

  it('still refuses the nested unbounded repeats first', () => {
    assert.match(backtrackingRisk('/(a+)+$') ?? '', /itself repeats without bound/);
    assert.match(backtrackingRisk('/([a-z0-9]+-){3}') ?? '', /itself repeats without bound/);
  });
});
