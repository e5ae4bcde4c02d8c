/*
 * The one logger factory. Each category writes JSON lines to its own file in LOG_DIR
 * (automation, cleanup, monitoring, orchestration, audit); the console gets readable lines on a
 * TTY and JSON otherwise. Every record passes through `redact` first.
 */
import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import type winston from 'winston';
import { redact } from './redact.js';

let library: typeof winston | undefined;
/** winston, loaded with the first logger: read-only commands (`servers`, `status`) never log. */
function winstonLibrary(): typeof winston {
  library ??= createRequire(import.meta.url)('winston') as typeof winston;
  return library;
}

export const LOG_CATEGORIES = ['automation', 'cleanup', 'monitoring', 'orchestration', 'audit'] as const;
export type LogCategory = (typeof LOG_CATEGORIES)[number];

export interface LoggerSettings {
  logDir: string;
  logLevel: string;
  /** Console output: 'auto' = readable on a TTY, JSON otherwise; 'off' for tests and the CLI. */
  console?: 'auto' | 'json' | 'pretty' | 'off';
}

function redactInfo(info: winston.Logform.TransformableInfo): winston.Logform.TransformableInfo {
  const clean = redact({ ...info });
  for (const key of Object.keys(info)) delete (info as Record<string, unknown>)[key];
  Object.assign(info, clean);
  return info;
}

const loggers = new Map<string, winston.Logger>();
let settings: LoggerSettings = { logDir: path.resolve('data/logs'), logLevel: 'info', console: 'auto' };

/** Set where and how loggers write; loggers created earlier are rebuilt. */
export function configureLogging(next: LoggerSettings): void {
  settings = { console: 'auto', ...next };
  for (const logger of loggers.values()) logger.close();
  loggers.clear();
}

function consoleTransport(mode: LoggerSettings['console']): winston.transport | undefined {
  if (mode === 'off') return undefined;
  const winston = winstonLibrary();
  const pretty = mode === 'pretty' || (mode !== 'json' && process.stdout.isTTY);
  const format = pretty
    ? winston.format.combine(
        winston.format.colorize(),
        winston.format.printf(({ timestamp, level, message, category, ...rest }) => {
          const extra = Object.keys(rest).length > 0 ? ` ${JSON.stringify(rest)}` : '';
          return `${String(timestamp).slice(11, 19)} ${level} [${String(category)}] ${String(message)}${extra}`;
        }),
      )
    : winston.format.json();
  return new winston.transports.Console({ format, stderrLevels: ['error', 'warn'] });
}

export function createLogger(category: LogCategory): winston.Logger {
  const existing = loggers.get(category);
  if (existing) return existing;
  fs.mkdirSync(settings.logDir, { recursive: true });
  const winston = winstonLibrary();
  const transports: winston.transport[] = [
    new winston.transports.File({
      filename: path.join(settings.logDir, `${category}.log`),
      format: winston.format.json(),
      maxsize: 50 * 1024 * 1024,
      maxFiles: 5,
      tailable: true,
    }),
  ];
  const console = consoleTransport(settings.console);
  if (console) transports.push(console);
  const logger = winston.createLogger({
    level: category === 'audit' ? 'info' : settings.logLevel,
    defaultMeta: { category },
    format: winston.format.combine(winston.format.errors({ stack: true }), winston.format(redactInfo)(), winston.format.timestamp()),
    transports,
  });
  loggers.set(category, logger);
  return logger;
}

/** Flush and close every logger (graceful shutdown, tests). */
export async function closeLoggers(): Promise<void> {
  const closing = [...loggers.values()].map(
    (logger) =>
      new Promise<void>((resolve) => {
        logger.on('finish', () => resolve());
        logger.end();
        setTimeout(resolve, 500).unref();
      }),
  );
  loggers.clear();
  await Promise.all(closing);
}
