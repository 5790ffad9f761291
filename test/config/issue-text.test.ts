// The one wording of a ConfigIssue (src/config/issue-text.ts) that keepip gateway, lb and up print.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { describeIssue, describeOrigin } from '../../src/config/issue-text.ts';
import type { ConfigIssue, Origin } from '../../src/config/model.ts';

const origin: Origin = { file: 'ingress.yaml', document: 2, kind: 'Ingress', namespace: 'web', name: 'shop' };

test('the origin names file, document and object', () => {
  assert.equal(describeOrigin(origin), 'ingress.yaml, document 2 (Ingress web/shop)');
  assert.equal(describeOrigin({ ...origin, kind: '' }), 'ingress.yaml, document 2');
});

test('an issue reads origin, field, message and code', () => {
  const issue: ConfigIssue = {
    severity: 'warning',
    code: 'UNSUPPORTED_ANNOTATION',
    message: 'not read by keepip; ignored',
    origin,
    field: 'metadata.annotations["x"]',
  };
  assert.equal(
    describeIssue(issue),
    'ingress.yaml, document 2 (Ingress web/shop) metadata.annotations["x"]: not read by keepip; ignored [UNSUPPORTED_ANNOTATION]',
  );
  assert.equal(
    describeIssue({ ...issue, field: undefined }),
    'ingress.yaml, document 2 (Ingress web/shop): not read by keepip; ignored [UNSUPPORTED_ANNOTATION]',
  );
});

test('a message that already names its origin does not say it twice', () => {
  const issue: ConfigIssue = {
    severity: 'error',
    code: 'UNSUPPORTED_ANNOTATION',
    message: `${describeOrigin(origin)} metadata.annotations["x"]: not read`,
    origin,
    field: 'metadata.annotations["x"]',
  };
  assert.equal(describeIssue(issue), `${issue.message} [UNSUPPORTED_ANNOTATION]`);
});

test('without an origin: the field if any, then the message', () => {
  const issue: ConfigIssue = { severity: 'error', code: 'UNSUPPORTED_ANNOTATION', message: 'bad' };
  assert.equal(describeIssue(issue), 'bad [UNSUPPORTED_ANNOTATION]');
  assert.equal(describeIssue({ ...issue, field: 'spec.rules' }), 'spec.rules: bad [UNSUPPORTED_ANNOTATION]');
});
