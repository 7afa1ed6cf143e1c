import { readFile } from 'node:fs/promises';
import path from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { handleReview } from './review.js';

const fixture = path.join(import.meta.dirname, 'testdata', 'admission-review-v1.json');

describe('handleReview', () => {
  it('returns at most 16 warnings of at most 256 characters, saying how many were left out', async () => {
    const review = JSON.parse(await readFile(fixture, 'utf8')) as {
      request: { object: { metadata: { annotations: Record<string, string> } } };
    };
    // 40 NADs with 63-character names and a bad nodeSelector item: 40 warnings of ~290 characters.
    const names = Array.from({ length: 40 }, (_, i) => `n${String(i).padStart(2, '0')}${'x'.repeat(60)}`);
    review.request.object.metadata.annotations['k8s.v1.cni.cncf.io/networks'] = names
      .map((n) => `${'y'.repeat(63)}/${n}`)
      .join(',');
    const result = await handleReview(JSON.stringify(review), {
      options: { downwardApi: false, namespaceIsolation: false, globalNamespaces: [] },
      lookups: () => (namespace, name) =>
        Promise.resolve({
          kind: 'found',
          nad: {
            namespace,
            name,
            config: '',
            annotations: { 'k8s.v1.cni.cncf.io/nodeSelector': `bad key ${'z'.repeat(90)}` },
          },
        }),
    });
    const warnings = (result.body['response'] as { warnings: string[] }).warnings;
    expect(warnings).toHaveLength(16);
    for (const w of warnings) expect(w.length).toBeLessThanOrEqual(256);
    expect(warnings[15]).toBe('netplumb-webhook: … and 25 more warnings');
    expect(result.mutation?.warnings).toHaveLength(40);
  });

  it('allows what is not a Pod CREATE without looking anything up', async () => {
    const review = JSON.parse(await readFile(fixture, 'utf8')) as { request: { operation: string } };
    review.request.operation = 'UPDATE';
    const result = await handleReview(JSON.stringify(review), {
      options: { downwardApi: true, namespaceIsolation: false, globalNamespaces: [] },
      lookups: () => () => Promise.reject(new Error('must not be called')),
    });
    expect(result.outcome).toBe('skipped');
    expect(result.body['response']).toEqual({ uid: '5d2f6a1e-7c4b-4a51-9d7e-2b1f0c9a8e31', allowed: true });
  });

  it('answers every body with 200 or 400 and never throws (fuzz, in-process)', async () => {
    const base = JSON.parse(await readFile(fixture, 'utf8')) as { request: Record<string, unknown> };
    const networks = fc.oneof(
      fc.string(),
      fc
        .array(fc.constantFrom('a', 'b/c', 'd@e', 'x/y@z', '', ' ', ',', '@', '/'), { maxLength: 6 })
        .map((xs) => xs.join(',')),
      fc.jsonValue().map((v) => JSON.stringify(v)),
    );
    const body = fc.oneof(
      fc.string(),
      fc.jsonValue().map((v) => JSON.stringify(v)),
      fc
        .record({ object: fc.jsonValue(), kind: fc.jsonValue(), uid: fc.jsonValue() })
        .map((r) => JSON.stringify({ ...base, request: { ...base.request, ...r } })),
      fc.tuple(networks, fc.jsonValue(), fc.jsonValue()).map(([n, containers, nodeSelector]) =>
        JSON.stringify({
          ...base,
          request: {
            ...base.request,
            object: {
              metadata: { annotations: { 'k8s.v1.cni.cncf.io/networks': n } },
              spec: { containers, nodeSelector },
            },
          },
        }),
      ),
    );
    const nad = {
      namespace: 'default',
      name: 'a',
      config: '',
      annotations: { 'k8s.v1.cni.cncf.io/resourceName': 'r.io/x' },
    };
    await fc.assert(
      fc.asyncProperty(body, async (text) => {
        const r = await handleReview(text, {
          options: { downwardApi: true, namespaceIsolation: true, globalNamespaces: ['default'] },
          lookups: () => (namespace, name) =>
            Promise.resolve(
              name === 'a' ? { kind: 'found', nad: { ...nad, namespace } } : { kind: 'missing' },
            ),
        });
        expect([200, 400]).toContain(r.status);
      }),
      { numRuns: 2000 },
    );
  });
});
