// Regenerates proto/gen/ from the kubelet .proto files in proto/ with ts-proto 1.x, whose output
// runs on protobufjs (`protobufjs/minimal` readers and writers, `long` for 64-bit fields).
// Run with `npm run gen:proto`; proto/gen.test.ts regenerates into a temp dir and compares.
import { execFile } from 'node:child_process';
import { mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const run = promisify(execFile);

export const PROJECT_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
export const PROTO_DIR = path.join(PROJECT_ROOT, 'proto');
export const GEN_DIR = path.join(PROTO_DIR, 'gen');

/** The .proto files we generate code for, relative to proto/. */
export const PROTO_FILES = [
  'deviceplugin/v1beta1/api.proto',
  'pluginregistration/v1/api.proto',
  'podresources/v1/api.proto',
] as const;

/**
 * ts-proto options, the single source for every generation of proto/gen/ (protobufjs is the runtime:
 * ts-proto 1.x always emits `protobufjs/minimal` codecs).
 * - grpc-js service definitions (served and called with @grpc/grpc-js over unix sockets);
 * - int64/uint64 as `number` (NUMA ids, CPU ids and memory sizes stay far below 2^53);
 * - no version banner, so the check does not depend on the protoc patch release.
 */
export const TS_PROTO_OPTIONS = {
  outputServices: 'grpc-js',
  esModuleInterop: 'true',
  importSuffix: '.js',
  env: 'node',
  forceLong: 'number',
  useOptionals: 'none',
  annotateFilesWithVersion: 'false',
} as const;

export function tsProtoOptArg(): string {
  return Object.entries(TS_PROTO_OPTIONS)
    .map(([k, v]) => `${k}=${v}`)
    .join(',');
}

/**
 * grpc-js names that ts-proto 1.x imports as values although they are types only; under
 * `verbatimModuleSyntax` they must be `type` imports. (ts-proto 2.x fixed this, but its output
 * runs on @bufbuild/protobuf instead of protobufjs.)
 */
const TYPE_ONLY_GRPC_NAMES = ['ClientReadableStream', 'handleServerStreamingCall'] as const;

// ts-proto 1.x writes a packed repeated field even when it is empty (tag + length 0), where the
// protobuf encoding spec says an empty packed field does not appear; proto/wire.test.ts checks it.
const EMPTY_PACKED =
  /^ {4}writer\.uint32\((\d+)\)\.fork\(\);\n {4}for \(const v of message\.(\w+)\) \{\n {6}(writer\.\w+\(v\);)\n {4}\}\n {4}writer\.ldelim\(\);$/gm;

function guardedPacked(tag: string, field: string, write: string): string {
  return [
    `    if (message.${field}.length > 0) {`,
    `      writer.uint32(${tag}).fork();`,
    `      for (const v of message.${field}) {`,
    `        ${write}`,
    '      }',
    '      writer.ldelim();',
    '    }',
  ].join('\n');
}

/**
 * The two fix-ups ts-proto 1.x output needs: TYPE_ONLY_GRPC_NAMES become `type` imports, and a
 * packed repeated field is only written when it has elements.
 */
export function fixGenerated(source: string): string {
  let out = source;
  for (const name of TYPE_ONLY_GRPC_NAMES)
    out = out.replace(new RegExp(`^  ${name},$`, 'm'), `  type ${name},`);
  return out.replace(EMPTY_PACKED, (_m, tag: string, field: string, write: string) =>
    guardedPacked(tag, field, write),
  );
}

/** Generates TypeScript for PROTO_FILES into `outDir` (replaced wholesale). */
export async function generateProto(outDir: string): Promise<void> {
  await rm(outDir, { recursive: true, force: true });
  await mkdir(outDir, { recursive: true });
  const plugin = path.join(PROJECT_ROOT, 'node_modules', '.bin', 'protoc-gen-ts_proto');
  try {
    await run(
      'protoc',
      [
        `--plugin=protoc-gen-ts_proto=${plugin}`,
        `--ts_proto_out=${outDir}`,
        `--ts_proto_opt=${tsProtoOptArg()}`,
        `-I${PROTO_DIR}`,
        ...PROTO_FILES,
      ],
      { cwd: PROTO_DIR },
    );
  } catch (err) {
    throw new Error(`protoc failed (is protobuf-compiler installed?): ${String(err)}`, { cause: err });
  }
  for (const file of await listFiles(outDir)) {
    const p = path.join(outDir, file);
    await writeFile(p, fixGenerated(await readFile(p, 'utf8')));
  }
}

/** Lists files under `dir` recursively, relative to it, sorted. */
export async function listFiles(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true });
  return entries
    .filter((e) => e.isFile())
    .map((e) => path.relative(dir, path.join(e.parentPath, e.name)))
    .sort();
}

if (process.argv[1] !== undefined && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  await generateProto(GEN_DIR);
  process.stdout.write(`generated ${(await listFiles(GEN_DIR)).join(', ')} in proto/gen\n`);
}
