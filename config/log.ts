import { resolve } from 'node:path';
import pino, { type DestinationStream, type Logger } from 'pino';
import { DrError } from './errors.ts';

export type { Logger };

/**
 * Process-wide pino logger: pretty on a terminal, JSON lines otherwise (or when DR_LOG_FORMAT=json).
 * Child loggers carry structured fields (`rank`, `actor`, `job`), never string-concatenated context.
 *
 * With a log file (`file`, default DR_LOG_FILE) every line also goes there as JSON, whatever the terminal
 * shows: that file is what `dr node-logs JOB` reads back on each node. It is appended to and written
 * synchronously, so a node killed mid-run keeps every line it logged. A file that cannot be opened is a
 * CONFIG_INVALID DrError naming the path.
 */
export function createLogger(
  bindings: Record<string, unknown> = {},
  level = process.env.DR_LOG_LEVEL ?? 'info',
  file = process.env.DR_LOG_FILE,
): Logger {
  const pretty = process.env.DR_LOG_FORMAT !== 'json' && process.stderr.isTTY === true;
  const terminal: DestinationStream = pretty
    ? pino.transport({ target: 'pino-pretty', options: { destination: 2, colorize: true } })
    : // Synchronous: an async destination flushes on exit and retries EPIPE forever, so a node whose
      // stderr reader is gone could never finish process.exit (see runtime/kill-deadline.ts).
      pino.destination({ dest: 2, sync: true });
  if (file === undefined || file === '') return pino({ level, base: bindings }, terminal);
  return pino(
    { level, base: bindings },
    pino.multistream([
      { level: 'trace', stream: terminal },
      { level: 'trace', stream: openLogFile(file) },
    ]),
  );
}

function openLogFile(file: string): DestinationStream {
  try {
    return pino.destination({ dest: resolve(file), mkdir: true, append: true, sync: true });
  } catch (err) {
    throw new DrError(
      'CONFIG_INVALID',
      `cannot open the log file ${resolve(file)} (--log-file or DR_LOG_FILE): ${(err as Error).message}. Fix: a writable file path`,
      { cause: err, details: { setting: 'logFile' } },
    );
  }
}

/** A logger that drops everything; for tests and library use without a configured logger. */
export const silentLogger: Logger = pino({ level: 'silent' });
