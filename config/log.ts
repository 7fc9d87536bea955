import pino, { type Logger } from 'pino';

export type { Logger };

/**
 * Process-wide pino logger: pretty on a terminal, JSON lines otherwise (or when DR_LOG_FORMAT=json).
 * Child loggers carry structured fields (`rank`, `actor`, `job`), never string-concatenated context.
 */
export function createLogger(bindings: Record<string, unknown> = {}, level = process.env.DR_LOG_LEVEL ?? 'info'): Logger {
  const pretty = process.env.DR_LOG_FORMAT !== 'json' && process.stderr.isTTY === true;
  const transport = pretty
    ? pino.transport({ target: 'pino-pretty', options: { destination: 2, colorize: true } })
    : pino.destination(2);
  return pino({ level, base: bindings }, transport);
}

/** A logger that drops everything; for tests and library use without a configured logger. */
export const silentLogger: Logger = pino({ level: 'silent' });
