// SIGUSR1 reopens the --access-log file, as nginx's: after logrotate moved it away, the gateway (one
// process, and each of its workers) writes to a new file at the path; the lines before the signal are
// in the moved file. A path that cannot be opened keeps the file it had, said with its code.
import assert from 'node:assert/strict';
import { mkdirSync, renameSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { type RunningWhoami, startWhoami } from '../../src/whoami/server.ts';
import { request } from '../fixtures/gateway/harness.ts';
import { controllerConfigMap, manifestDir, toYaml, webApp } from '../fixtures/gateway/manifests.ts';
import { startKeepip } from '../helpers/process.ts';
import { fileLines, parseServed, untilEveryWorkerServed, workerLogFormat, workerPids } from './helpers.ts';

describe('SIGUSR1 reopens the access log file', () => {
  let backend: RunningWhoami;
  let dir: ReturnType<typeof manifestDir>;
  let file: string;

  before(async () => {
    backend = await startWhoami({ host: '127.0.0.1', port: 0 });
    dir = manifestDir();
    file = dir.write(
      'web.yaml',
      toYaml([
        controllerConfigMap({ 'log-format-upstream': workerLogFormat('m') }),
        ...webApp(backend.address.port),
      ]),
    );
  });

  after(async () => {
    await backend.close();
    dir.remove();
  });

  /** The gateway with its access log at `<logs>/access.log`, and its port. */
  async function start(logs: string, extra: string[] = []) {
    mkdirSync(logs, { recursive: true });
    const path = join(logs, 'access.log');
    const gateway = startKeepip([
      'gateway',
      '-f',
      file,
      '--http',
      '127.0.0.1:0',
      '--access-log',
      path,
      ...extra,
    ]);
    const port = Number((await gateway.waitFor(/listening http 127\.0\.0\.1:(\d+)/))[1]);
    return { gateway, port, path };
  }

  const get = async (port: number, path: string) =>
    assert.equal((await request(port, { host: 'web.example.com', path })).status, 200, path);

  test('one process: lines before the signal stay in the moved file, lines after go to the new one', async () => {
    const { gateway, port, path } = await start(join(dir.dir, 'one'));
    try {
      await get(port, '/before');
      await fileLines(path).waitForLines(/"GET \/before /, 1);
      renameSync(path, `${path}.1`);
      gateway.child.kill('SIGUSR1');
      await gateway.waitFor(/SIGUSR1: access log \S+access\.log reopened/);
      await get(port, '/after');
      await fileLines(path).waitForLines(/"GET \/after /, 1);
      // A second request proves the first's line had its turn to land in the old file, if it would.
      await get(port, '/after-2');
      await fileLines(path).waitForLines(/"GET \/after-2 /, 1);
      assert.deepEqual(
        fileLines(`${path}.1`)
          .stdoutLines()
          .map((line) => parseServed(line)?.path),
        ['/before'],
      );
      assert.deepEqual(
        fileLines(path)
          .stdoutLines()
          .map((line) => parseServed(line)?.path),
        ['/after', '/after-2'],
      );
    } finally {
      await gateway.stop();
    }
  });

  test('--workers 2: every worker writes to the new file once the primary says it reopened', async () => {
    const { gateway, port, path } = await start(join(dir.dir, 'two'), ['--workers', '2']);
    try {
      const pids = await workerPids(gateway);
      await untilEveryWorkerServed({ port, ...fileLines(path) }, pids, 'before');
      renameSync(path, `${path}.1`);
      gateway.child.kill('SIGUSR1');
      await gateway.waitFor(/SIGUSR1: access log \S+access\.log reopened/);
      const after = await untilEveryWorkerServed({ port, ...fileLines(path) }, pids, 'after');
      assert.deepEqual(new Set(after.map((line) => line.pid)), new Set(pids));
      const moved = fileLines(`${path}.1`)
        .stdoutLines()
        .map((line) => parseServed(line)?.path ?? line);
      assert.ok(moved.length > 0);
      assert.deepEqual(
        moved.filter((p) => !p.startsWith('/before-')),
        [],
        'no line after the signal in the moved file',
      );
    } finally {
      await gateway.stop();
    }
  });

  test('a path that cannot be opened again: ACCESS_LOG_REOPEN_FAILED, and the lines go on to the file it had', async () => {
    const logs = join(dir.dir, 'gone');
    const { gateway, port, path } = await start(logs);
    try {
      await get(port, '/before');
      await fileLines(path).waitForLines(/"GET \/before /, 1);
      // The directory moved away: the path has no directory to be created in.
      renameSync(logs, `${logs}.old`);
      gateway.child.kill('SIGUSR1');
      await gateway.waitFor(
        /error: SIGUSR1: cannot reopen .*access\.log \(.*ENOENT.*\); writing on to the file it had \[ACCESS_LOG_REOPEN_FAILED\]/,
      );
      await get(port, '/after');
      await fileLines(join(`${logs}.old`, 'access.log')).waitForLines(/"GET \/after /, 1);
    } finally {
      await gateway.stop();
    }
  });

  test('without --access-log (stdout), SIGUSR1 says there is nothing to reopen and serving goes on', async () => {
    const gateway = startKeepip(['gateway', '-f', file, '--http', '127.0.0.1:0']);
    try {
      const port = Number((await gateway.waitFor(/listening http 127\.0\.0\.1:(\d+)/))[1]);
      gateway.child.kill('SIGUSR1');
      await gateway.waitFor(/SIGUSR1: no --access-log file to reopen/);
      await get(port, '/still');
    } finally {
      await gateway.stop();
    }
  });
});
