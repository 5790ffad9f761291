// `keepip pp` end to end: the real executable, exit codes, one JSON object per decode.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { runKeepip } from '../helpers/process.ts';

const EXAMPLE = '0d0a0d0a000d0a515549540a211100147f0000017f000001002a05390200053132333435';

test('decode HEX prints the header as one JSON object and exits 0', async () => {
  const { code, stdout } = await runKeepip(['pp', 'decode', EXAMPLE]);
  assert.equal(code, 0);
  const json = JSON.parse(stdout);
  assert.deepEqual(
    {
      version: json.version,
      command: json.command,
      protocol: json.protocol,
      source: json.source,
      destination: json.destination,
      headerLength: json.headerLength,
      tlvs: json.tlvs,
    },
    {
      version: 2,
      command: 'PROXY',
      protocol: 'TCP4',
      source: { address: '127.0.0.1', port: 42 },
      destination: { address: '127.0.0.1', port: 1337 },
      headerLength: 36,
      tlvs: [{ type: 2, name: 'AUTHORITY', value: '12345' }],
    },
  );
  assert.equal(stdout.trim().split('\n').length, 1);
});

test('decode - reads raw bytes or hex from stdin; bytes after the header are not counted', async () => {
  const raw = await runKeepip(['pp', 'decode', '-'], {
    input: 'PROXY TCP6 2001:DB8:0::1 ::1 1 2\r\nGET / HTTP/1.1\r\n',
  });
  assert.equal(raw.code, 0);
  const json = JSON.parse(raw.stdout);
  assert.equal(json.source.address, '2001:db8::1');
  assert.equal(json.headerLength, 34);
  const hex = await runKeepip(['pp', 'decode', '-'], { input: `${EXAMPLE}\n` });
  assert.equal(hex.code, 0);
  assert.equal(JSON.parse(hex.stdout).headerLength, 36);
  const local = await runKeepip(['pp', 'decode', '0d0a0d0a000d0a515549540a20000000']);
  assert.equal(JSON.parse(local.stdout).source, null);
});

test('invalid and incomplete headers print {"error":{code,message}} and exit 1', async () => {
  const bad = await runKeepip(['pp', 'decode', '0d0a0d0a000d0a515549540a2311000c7f0000017f000002005001bb']);
  assert.equal(bad.code, 1);
  assert.equal(JSON.parse(bad.stdout).error.code, 'PP_V2_BAD_COMMAND');
  const short = await runKeepip(['pp', 'decode', EXAMPLE.slice(0, 40)]);
  assert.equal(short.code, 1);
  assert.equal(JSON.parse(short.stdout).error.code, 'PP_INCOMPLETE');
  assert.match(JSON.parse(short.stdout).error.message, /need 36 bytes, have 20/);
});

test('bad usage exits 2; --help exits 0', async () => {
  assert.equal((await runKeepip(['pp', 'decode', 'xyz'])).code, 2);
  assert.equal((await runKeepip(['pp', 'decode'])).code, 2);
  assert.equal((await runKeepip(['pp', 'frob'])).code, 2);
  assert.equal((await runKeepip(['pp', 'encode', '--version', '3'])).code, 2);
  const help = await runKeepip(['pp', '--help']);
  assert.equal(help.code, 0);
  assert.match(help.stdout, /keepip pp decode/);
  assert.match(help.stdout, /--crc32c/);
});

test('encode builds what decode reads back, TLVs and CRC32C included', async () => {
  const encoded = await runKeepip([
    'pp',
    'encode',
    '--source',
    '[2001:db8::7]:40000',
    '--destination',
    '[2001:db8::1]:443',
    '--authority',
    'example.com',
    '--aws-vpce',
    'vpce-08d2bf15fac5001c9',
    '--crc32c',
  ]);
  assert.equal(encoded.code, 0, encoded.stderr);
  const decoded = await runKeepip(['pp', 'decode', encoded.stdout.trim()]);
  assert.equal(decoded.code, 0);
  const json = JSON.parse(decoded.stdout);
  assert.equal(json.protocol, 'TCP6');
  assert.deepEqual(json.source, { address: '2001:db8::7', port: 40000 });
  assert.equal(json.authority, 'example.com');
  assert.equal(json.awsVpcEndpointId, 'vpce-08d2bf15fac5001c9');
  assert.equal(json.tlvs[0].name, 'CRC32C');

  const v1 = await runKeepip([
    'pp',
    'encode',
    '--version',
    '1',
    '--source',
    '1.2.3.4:5',
    '--destination',
    '6.7.8.9:80',
  ]);
  assert.equal(Buffer.from(v1.stdout.trim(), 'hex').toString(), 'PROXY TCP4 1.2.3.4 6.7.8.9 5 80\r\n');
  // A spec the parser would refuse is refused here too, unless asked for on purpose.
  const long = 'x'.repeat(129);
  const tooLong = [
    'pp',
    'encode',
    '--source',
    '1.2.3.4:5',
    '--destination',
    '6.7.8.9:80',
    '--tlv',
    `5:${'78'.repeat(129)}`,
  ];
  assert.equal((await runKeepip(tooLong)).code, 2);
  const unchecked = await runKeepip([...tooLong, '--unchecked']);
  assert.equal(unchecked.code, 0);
  const refused = await runKeepip(['pp', 'decode', unchecked.stdout.trim()]);
  assert.equal(JSON.parse(refused.stdout).error.code, 'PP_V2_UNIQUE_ID_TOO_LONG');
  assert.equal((await runKeepip(['pp', 'encode', '--unique-id', long])).code, 2);
});
