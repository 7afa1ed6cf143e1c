// readProcessRequest / writeProcessResponse in a real child process: stdin and stdout are read and
// written on fds 0 and 1 directly, and a non-blocking stdin or stdout still carries every byte.
import { execFileSync, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { closeSync, constants, openSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

let dir = '';
let script = '';

// The child answers with what it read (stdin echoed as the CNI stdout).
beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'np-skel-proc-'));
  script = path.join(dir, 'echo.mts');
  const skel = pathToFileURL(path.resolve(import.meta.dirname, 'skel.ts')).href;
  await writeFile(
    script,
    [
      `import { readProcessRequest, writeProcessResponse } from ${JSON.stringify(skel)};`,
      'const req = await readProcessRequest();',
      'await writeProcessResponse({ stdout: req.stdin, exitCode: 0 });',
    ].join('\n'),
  );
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

const sha = (b: Buffer | string): string => createHash('sha256').update(b).digest('hex');
const payload = (bytes: number): string => 'x'.repeat(bytes - 1) + '\n';

function collect(stream: NodeJS.ReadableStream): Promise<Buffer> {
  const chunks: Buffer[] = [];
  return new Promise((resolve, reject) => {
    stream.on('data', (c: Buffer) => chunks.push(c));
    stream.on('end', () => {
      resolve(Buffer.concat(chunks));
    });
    stream.on('error', reject);
  });
}

function piped<T>(s: T | null): T {
  if (s === null) throw new Error('the child has no pipe there');
  return s;
}

function fifo(name: string): string {
  const p = path.join(dir, name);
  execFileSync('mkfifo', [p]);
  return p;
}

describe('the process request and response on fds 0 and 1', () => {
  it('reads 1 MiB of piped stdin and writes it back whole', async () => {
    const data = payload(1 << 20);
    const child = spawn(process.execPath, ['--import', 'tsx', script], {
      stdio: ['pipe', 'pipe', 'inherit'],
    });
    const out = collect(piped(child.stdout));
    piped(child.stdin).end(data);
    expect(sha(await out)).toBe(sha(data));
  });

  it('reads a non-blocking stdin whose data arrives late (EAGAIN): nothing read before it is lost', async () => {
    const p = fifo('in');
    const readEnd = openSync(p, constants.O_RDONLY | constants.O_NONBLOCK);
    const writeEnd = openSync(p, constants.O_WRONLY);
    const writer = new net.Socket({ fd: writeEnd, readable: false });
    const child = spawn(process.execPath, ['--import', 'tsx', script], {
      stdio: [readEnd, 'pipe', 'inherit'],
    });
    closeSync(readEnd);
    const out = collect(piped(child.stdout));
    // A first part before the child reads, the rest once it has surely hit EAGAIN.
    const data = payload(300_000);
    writer.write(data.slice(0, 1000));
    await new Promise((r) => setTimeout(r, 1500));
    writer.end(data.slice(1000));
    expect(sha(await out)).toBe(sha(data));
  });

  it('writes a large answer to a non-blocking stdout that a slow reader drains (EAGAIN)', async () => {
    const p = fifo('out');
    const readEnd = openSync(p, constants.O_RDONLY | constants.O_NONBLOCK);
    const writeEnd = openSync(p, constants.O_WRONLY | constants.O_NONBLOCK);
    const data = payload(1 << 20);
    const child = spawn(process.execPath, ['--import', 'tsx', script], {
      stdio: ['pipe', writeEnd, 'inherit'],
    });
    closeSync(writeEnd);
    const reader = new net.Socket({ fd: readEnd, writable: false });
    reader.pause();
    const out = collect(reader);
    piped(child.stdin).end(data);
    // The pipe (64 KiB) fills long before the child has written 1 MiB; then read it all.
    await new Promise((r) => setTimeout(r, 1500));
    reader.resume();
    const exited = new Promise((r) => child.once('exit', r));
    await exited;
    expect(sha(await out)).toBe(sha(data));
  });
});
