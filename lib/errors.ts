// One error vocabulary for the whole product. Every error netplumb raises on purpose extends
// NetplumbError and carries a stable, documented `code` (kebab-case, never reworded) and the exit
// code a CLI ends with when the error reaches it. Boundary-specific errors (CniError with the CNI
// spec's numeric codes, gRPC statuses on the kubelet path) keep their own wire codes as fields.

export interface NetplumbErrorOptions {
  /** The underlying error, kept for logs (`err.cause`), never swallowed. */
  readonly cause?: unknown;
  /** Exit code when a CLI command ends with this error; default 1 (2 = bad input or config). */
  readonly exitCode?: number;
}

/** Exit codes shared by every CLI command. */
export const ExitCode = {
  /** Something failed at run time. */
  FAILURE: 1,
  /** The user's input (flags, config, a file) is wrong; the message says which field and the fix. */
  USAGE: 2,
} as const;

export class NetplumbError extends Error {
  override name = 'NetplumbError';
  /**
   * Stable machine-readable code, e.g. `VF_RANGE_INVALID`, `LINK_NOT_FOUND`; a number only where
   * a wire protocol defines the codes (CniError: the CNI spec's error codes).
   */
  readonly code: string | number;
  readonly exitCode: number;

  constructor(code: string | number, message: string, options: NetplumbErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.exitCode = options.exitCode ?? ExitCode.FAILURE;
  }
}

export interface CliErrorReport {
  readonly message: string;
  readonly code: string | number;
  readonly exitCode: number;
}

/**
 * How a CLI command reports an error that reached it: our own errors by their message, code and
 * exit code; anything else is a bug (code `internal`, exit 1) and keeps its stack for the log.
 */
export function cliErrorReport(err: unknown): CliErrorReport {
  if (err instanceof NetplumbError) return { message: err.message, code: err.code, exitCode: err.exitCode };
  const message = err instanceof Error ? (err.stack ?? err.message) : String(err);
  return { message: `internal error: ${message}`, code: 'internal', exitCode: ExitCode.FAILURE };
}

/** Writes the report for humans (`netplumb: <message>`) or as one JSON line (`--json`), returns the exit code. */
export function reportCliError(
  err: unknown,
  stderr: Pick<NodeJS.WritableStream, 'write'>,
  json = false,
): number {
  const r = cliErrorReport(err);
  stderr.write(json ? `${JSON.stringify({ error: r })}\n` : `netplumb: ${r.message}\n`);
  return r.exitCode;
}
