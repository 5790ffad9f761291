// gRPC's view of the gateway's answers (src/gateway/grpc-status.ts).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  encodeGrpcMessage,
  GRPC_STATUS,
  grpcAnswerHeaders,
  grpcStatusForHttp,
  isGrpcRequest,
  parseGrpcTimeout,
} from '../../src/gateway/grpc-status.ts';

test('gRPC requests by content-type: application/grpc and its +format / ;params forms, not grpc-web', () => {
  for (const type of ['application/grpc', 'application/grpc+proto', 'application/grpc;charset=utf-8'])
    assert.equal(isGrpcRequest({ 'content-type': type }), true, type);
  for (const type of ['application/grpc-web', 'application/grpcx', 'application/json', undefined])
    assert.equal(isGrpcRequest({ 'content-type': type }), false, String(type));
});

test("the gateway's statuses as gRPC codes (gRPC's HTTP mapping where it has one)", () => {
  const table: [number, number][] = [
    [400, GRPC_STATUS.INTERNAL],
    [401, GRPC_STATUS.UNAUTHENTICATED],
    [403, GRPC_STATUS.PERMISSION_DENIED],
    [404, GRPC_STATUS.UNIMPLEMENTED],
    [408, GRPC_STATUS.DEADLINE_EXCEEDED],
    [413, GRPC_STATUS.RESOURCE_EXHAUSTED],
    [429, GRPC_STATUS.UNAVAILABLE],
    [502, GRPC_STATUS.UNAVAILABLE],
    [503, GRPC_STATUS.UNAVAILABLE],
    [504, GRPC_STATUS.UNAVAILABLE],
    [308, GRPC_STATUS.UNKNOWN],
  ];
  for (const [status, code] of table) assert.equal(grpcStatusForHttp(status), code, String(status));
});

test('grpc-message is percent-encoded; the answer head carries content-type, status and message', () => {
  assert.equal(encodeGrpcMessage('100% sûr\n'), '100%25 s%C3%BBr%0A');
  assert.deepEqual(grpcAnswerHeaders(7, 'no', { 'www-authenticate': 'Basic' }), {
    'www-authenticate': 'Basic',
    'content-type': 'application/grpc',
    'grpc-status': '7',
    'grpc-message': 'no',
  });
});

test('grpc-timeout: up to 8 digits and a unit; anything else is ignored', () => {
  assert.equal(parseGrpcTimeout('200m'), 200);
  assert.equal(parseGrpcTimeout('3S'), 3_000);
  assert.equal(parseGrpcTimeout('2M'), 120_000);
  assert.equal(parseGrpcTimeout('1H'), 3_600_000);
  assert.equal(parseGrpcTimeout('1500u'), 1.5);
  for (const bad of ['', '123456789m', '10', 'm', '-1S', '1.5S', undefined])
    assert.equal(parseGrpcTimeout(bad), null);
});
