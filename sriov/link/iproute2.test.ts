import { describe, expect, it } from 'vitest';
import { classifyIpError, createIproute2LinkOps } from './iproute2.js';
import { describeLinkOpsContract } from './link-ops.contract.js';
import { LinkErrorCode } from './link-ops.js';

describeLinkOpsContract('iproute2', () => createIproute2LinkOps());

describe('classifyIpError', () => {
  it('maps iproute2 and nsenter messages to stable codes', () => {
    expect(classifyIpError('Cannot find device "x"')).toBe(LinkErrorCode.NOT_FOUND);
    expect(classifyIpError('Device "x" does not exist.')).toBe(LinkErrorCode.NOT_FOUND);
    expect(classifyIpError('RTNETLINK answers: File exists')).toBe(LinkErrorCode.EXISTS);
    expect(classifyIpError('Cannot open network namespace "x": No such file or directory')).toBe(
      LinkErrorCode.NETNS_GONE,
    );
    expect(classifyIpError('nsenter: cannot open /tmp/x: No such file or directory')).toBe(
      LinkErrorCode.NETNS_GONE,
    );
    expect(classifyIpError('RTNETLINK answers: Operation not supported')).toBe(LinkErrorCode.FAILED);
  });
});
