/**
 * The one error base of the project. Every failure that crosses a module boundary is a DrError with a
 * stable `code` (SCREAMING_SNAKE, namespaced by area, e.g. `CLUSTER_NODE_DOWN`) and a message that tells
 * the reader what to do about it. Codes survive the wire: a remote failure is re-thrown locally with the
 * same code.
 */
export class DrError extends Error {
  readonly code: string;
  readonly details: Record<string, unknown> | undefined;

  constructor(
    code: string,
    message: string,
    options?: { cause?: unknown; details?: Record<string, unknown> },
  ) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'DrError';
    this.code = code;
    this.details = options?.details;
  }

  toJSON(): { code: string; message: string; details?: Record<string, unknown> } {
    return this.details === undefined
      ? { code: this.code, message: this.message }
      : { code: this.code, message: this.message, details: this.details };
  }
}

/** True when `err` is a DrError, optionally with the given code. */
export function isDrError(err: unknown, code?: string): err is DrError {
  return err instanceof DrError && (code === undefined || err.code === code);
}
