import { describe, expect, it } from 'vitest';
import { moveDefaultRoute } from './default-route.js';

describe('moveDefaultRoute', () => {
  it('drops the family default routes from every result and gives one to the requesting attachment', () => {
    const r = (routes: { dst: string; gw?: string }[]) => ({ interfaces: [], ips: [], routes, dns: {} });
    const out = moveDefaultRoute(
      [
        r([{ dst: '0.0.0.0/0', gw: '10.0.0.1' }, { dst: '::/0', gw: 'fd00::1' }, { dst: '10.96.0.0/12' }]),
        r([]),
      ],
      1,
      4,
      '192.168.5.1',
    );
    expect(out.map((x) => x.routes)).toEqual([
      [{ dst: '::/0', gw: 'fd00::1' }, { dst: '10.96.0.0/12' }],
      [{ dst: '0.0.0.0/0', gw: '192.168.5.1' }],
    ]);
  });
});
