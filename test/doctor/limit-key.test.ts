// ACCESS_KEYED_ON_SHARED_ADDRESS and limit-conn-zone-variable: limits keyed on a header do not share
// one bucket behind an LB that loses the address, so the doctor does not say they do; keyed on the
// address (the default, or a template with $remote_addr) they still do.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { diagnose } from '../../src/doctor/diagnose.ts';
import { applyPatches, patchConfigMap } from '../../src/doctor/fix.ts';
import { doctorInputs } from '../../src/doctor/inputs.ts';
import { loadManifests } from '../../src/k8s/index.ts';
import { manifestObject } from '../helpers/manifest-object.ts';

const fixture = fileURLToPath(new URL('../fixtures/doctor/access-keyed-on-shared-address/', import.meta.url));

async function keyedFinding(limitKey: string | null): Promise<string | undefined> {
  const { objects } = await loadManifests([fixture]);
  const configMap = { namespace: 'ingress-nginx', name: 'ingress-nginx-controller' };
  const patched = applyPatches(
    objects,
    limitKey === null ? [] : [patchConfigMap(configMap, { 'limit-conn-zone-variable': limitKey })],
    (raw) => manifestObject(raw),
  );
  assert.ok(patched.ok);
  const result = diagnose(doctorInputs(patched.objects).topology, {});
  assert.ok(result.ok);
  return result.report.findings.find((f) => f.id === 'ACCESS_KEYED_ON_SHARED_ADDRESS')?.message;
}

test('limits keyed on a header are not a shared bucket; keyed on the address they are', async () => {
  assert.match((await keyedFinding(null)) ?? '', /keys limit-rps, limit-connections by/);
  assert.match(
    (await keyedFinding('$binary_remote_addr$http_x_user')) ?? '',
    /keys limit-rps, limit-connections by/,
  );
  assert.equal(await keyedFinding('$http_x_api_key'), undefined);
});
