// CniError: the single error type of the CNI path. Its `code` is the spec's numeric code (0-99
// reserved by the spec, 100+ plugin specific) and it renders as the spec's error JSON.
import { NetplumbError } from '../lib/errors.js';
import type { JsonObject } from '../lib/json.js';

/** Error codes from the CNI spec (SPEC.md "Error"), plus libcni's 8 and 999. */
export const CniErrorCode = {
  IncompatibleVersion: 1,
  UnsupportedField: 2,
  UnknownContainer: 3,
  InvalidEnvironmentVariables: 4,
  IoFailure: 5,
  DecodingFailure: 6,
  InvalidNetworkConfig: 7,
  InvalidNetNs: 8,
  TryAgainLater: 11,
  /** STATUS: the plugin is not available. */
  NotAvailable: 50,
  /** STATUS: not available, existing containers may have limited connectivity. */
  LimitedConnectivity: 51,
  Internal: 999,
} as const;
export type CniErrorCode = (typeof CniErrorCode)[keyof typeof CniErrorCode];

export interface CniErrorOptions {
  readonly details?: string | undefined;
  readonly cause?: unknown;
}

export class CniError extends NetplumbError {
  override readonly name = 'CniError';
  /** A spec code (CniErrorCode) or a plugin-specific code >= 100 reported by a delegate. */
  declare readonly code: number;
  readonly details: string | undefined;

  constructor(code: number, msg: string, options: CniErrorOptions = {}) {
    super(code, msg, options.cause === undefined ? undefined : { cause: options.cause });
    this.details = options.details;
  }

  /** The spec's error object: `{cniVersion, code, msg, details?}`. */
  toJson(cniVersion: string): JsonObject {
    const out: JsonObject = { cniVersion, code: this.code, msg: this.message };
    if (this.details !== undefined && this.details !== '') out['details'] = this.details;
    return out;
  }

  /** Wraps anything thrown into a CniError (999 unless it already is one). */
  static from(err: unknown, prefix?: string): CniError {
    if (err instanceof CniError) {
      if (prefix === undefined) return err;
      return new CniError(err.code, `${prefix}: ${err.message}`, { details: err.details, cause: err });
    }
    const text = err instanceof Error ? err.message : String(err);
    return new CniError(CniErrorCode.Internal, prefix === undefined ? text : `${prefix}: ${text}`, {
      cause: err,
    });
  }
}
