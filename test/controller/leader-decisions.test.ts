// decideElection and friends without a server: client-go's tryAcquireOrRenew rules, on our clock.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  decideElection,
  failedAttempt,
  INITIAL_ELECTION,
  type LeaseRead,
  type LeaseSpec,
  microTime,
  readLeaseSpec,
  releasedLease,
  retryDelay,
  wroteLease,
} from '../../src/controller/leader.ts';
import { CLIENT_GO_LEASE, parseControllerFlags } from '../../src/controller/flags.ts';

const timings = CLIENT_GO_LEASE;
const held = (holder: string, renew = 'r1', rv = '1'): LeaseRead => ({
  exists: true,
  resourceVersion: rv,
  spec: {
    holderIdentity: holder,
    leaseDurationSeconds: 15,
    acquireTime: 'a',
    renewTime: renew,
    leaseTransitions: 3,
  },
});

describe('leader election decisions (client-go semantics)', () => {
  it('defaults to client-go timings: lease 15 s, renew deadline 10 s, retry 2 s', () => {
    const parsed = parseControllerFlags([], {});
    assert.equal(parsed.ok, true);
    if (parsed.ok !== true) return;
    assert.deepEqual(parsed.options.lease, {
      durationMs: 15_000,
      renewDeadlineMs: 10_000,
      retryPeriodMs: 2_000,
    });
    const short = parseControllerFlags(['--election-ttl=4s'], {});
    assert.deepEqual(short.ok === true && short.options.lease, {
      durationMs: 4000,
      renewDeadlineMs: 2000,
      retryPeriodMs: 1000,
    });
  });

  it('creates a missing Lease with itself as holder and 0 transitions', () => {
    const step = decideElection(INITIAL_ELECTION, { exists: false }, 'me', timings, 1000);
    assert.equal(step.action, 'create');
    if (step.action !== 'create') return;
    assert.equal(step.spec.holderIdentity, 'me');
    assert.equal(step.spec.leaseDurationSeconds, 15);
    assert.equal(step.spec.leaseTransitions, 0);
    assert.equal(step.spec.renewTime, microTime(1000));
    assert.match(microTime(1000), /^1970-01-01T00:00:01\.000000Z$/);
  });

  it('waits while another holder renews, and takes over only after a full lease without change (our clock)', () => {
    let step = decideElection(INITIAL_ELECTION, held('other', 'r1'), 'me', timings, 0);
    assert.equal(step.action, 'wait');
    // Renewed at 10 s: the clock restarts even though 14.9 s passed since we first looked.
    step = decideElection(step.state, held('other', 'r2'), 'me', timings, 10_000);
    assert.equal(step.action, 'wait');
    step = decideElection(step.state, held('other', 'r2'), 'me', timings, 24_999);
    assert.equal(step.action, 'wait');
    const take = decideElection(step.state, held('other', 'r2', '7'), 'me', timings, 25_000);
    assert.equal(take.action, 'update');
    if (take.action !== 'update') return;
    assert.equal(take.resourceVersion, '7', 'optimistic concurrency on the version read');
    assert.equal(take.spec.holderIdentity, 'me');
    assert.equal(take.spec.leaseTransitions, 4);
  });

  it('a holder whose Lease has no, a zero or a negative duration has no claim: taken at once (client-go isLeaseValid)', () => {
    for (const leaseDurationSeconds of [0, -5]) {
      const read = held('other');
      if (!read.exists) throw new Error('unreachable');
      const step = decideElection(
        INITIAL_ELECTION,
        { ...read, spec: { ...read.spec, leaseDurationSeconds } },
        'me',
        timings,
        1_000,
      );
      assert.equal(step.action, 'update', `duration ${leaseDurationSeconds}`);
    }
    // A Lease without the field reads as 0 (readLeaseSpec), the same.
    const missing = decideElection(
      INITIAL_ELECTION,
      {
        exists: true,
        resourceVersion: '2',
        spec: readLeaseSpec({ holderIdentity: 'other', renewTime: 'r' }),
      },
      'me',
      timings,
      1_000,
    );
    assert.equal(missing.action, 'update');
  });

  it('renews its own Lease keeping acquireTime and transitions', () => {
    const step = decideElection(INITIAL_ELECTION, held('me'), 'me', timings, 5000);
    assert.equal(step.action, 'update');
    if (step.action !== 'update') return;
    assert.equal(step.spec.acquireTime, 'a');
    assert.equal(step.spec.leaseTransitions, 3);
  });

  it('takes a released Lease (empty holder) at once', () => {
    const released: LeaseSpec = releasedLease(
      held('other').exists ? (held('other') as { spec: LeaseSpec }).spec : ({} as LeaseSpec),
      0,
    );
    assert.equal(released.holderIdentity, '');
    assert.equal(released.leaseDurationSeconds, 1);
    const step = decideElection(
      INITIAL_ELECTION,
      { exists: true, spec: released, resourceVersion: '9' },
      'me',
      timings,
      1,
    );
    assert.equal(step.action, 'update');
  });

  it('a leader that cannot renew steps down at the renew deadline, not before', () => {
    const leading = wroteLease(
      held('me').exists ? (held('me') as { spec: LeaseSpec }).spec : ({} as LeaseSpec),
      0,
    );
    assert.equal(failedAttempt(leading, timings, 9_999).leading, true);
    assert.equal(failedAttempt(leading, timings, 10_000).leading, false);
  });

  it('a leader that sees another valid holder steps down', () => {
    const leading = wroteLease((held('me') as { spec: LeaseSpec }).spec, 0);
    const step = decideElection(leading, held('other', 'x'), 'me', timings, 1000);
    assert.equal(step.action, 'wait');
    assert.equal(step.state.leading, false);
  });

  it('spreads retries with jitter (retry period x [1, 2.2))', () => {
    assert.equal(
      retryDelay(timings, () => 0),
      2000,
    );
    assert.equal(
      retryDelay(timings, () => 0.5),
      3200,
    );
  });

  it('reads untrusted Lease JSON with zero values', () => {
    assert.deepEqual(readLeaseSpec({ holderIdentity: 5, leaseDurationSeconds: 'x' }), {
      holderIdentity: '',
      leaseDurationSeconds: 0,
      acquireTime: null,
      renewTime: null,
      leaseTransitions: 0,
    });
  });
});
