/*
 * The error hierarchy, the one retry decision (`isRetryable`), `toJobError` for BullMQ and the
 * `retry` helper with exponential backoff and jitter.
 */
import { expect } from 'chai';
import { UnrecoverableError } from 'bullmq';
import {
  backoffDelay,
  ConfigurationError,
  ConflictError,
  describeError,
  IntegrityError,
  isRetryable,
  LockError,
  MCPError,
  NotFoundError,
  RegistryError,
  retry,
  SmokeTestError,
  StagingError,
  ValidationError,
} from '../shared/errors.js';
import { toJobError } from '../workers/worker.js';

/** An Error with extra fields, the way Node, npm-registry-fetch and pacote throw them. */
function errorWith(fields: Record<string, unknown>, message = 'boom'): Error {
  return Object.assign(new Error(message), fields);
}

describe('errors: classes', () => {
  const cases: { name: string; error: MCPError; code: string; className: string }[] = [
    { name: 'ValidationError', error: new ValidationError('bad'), code: 'EVALIDATION', className: 'ValidationError' },
    { name: 'ConfigurationError', error: new ConfigurationError('bad'), code: 'ECONFIG', className: 'ConfigurationError' },
    { name: 'RegistryError', error: new RegistryError('E404', 'bad'), code: 'E404', className: 'RegistryError' },
    { name: 'IntegrityError', error: new IntegrityError('bad'), code: 'EINTEGRITY', className: 'IntegrityError' },
    { name: 'StagingError', error: new StagingError('ESTAGE', 'bad'), code: 'ESTAGE', className: 'StagingError' },
    { name: 'SmokeTestError', error: new SmokeTestError('bad'), code: 'ESMOKETEST', className: 'SmokeTestError' },
    { name: 'LockError', error: new LockError('bad'), code: 'ELOCKED', className: 'LockError' },
    { name: 'ConflictError', error: new ConflictError('bad'), code: 'ECONFLICT', className: 'ConflictError' },
    { name: 'NotFoundError', error: new NotFoundError('bad'), code: 'ENOTFOUND', className: 'NotFoundError' },
  ];
  for (const { name, error, code, className } of cases) {
    it(`${name} has code ${code} and is an MCPError and an Error`, () => {
      expect(error).to.be.instanceOf(MCPError);
      expect(error).to.be.instanceOf(Error);
      expect(error.code).to.equal(code);
      expect(error.name).to.equal(className);
      expect(error.message).to.equal('bad');
    });
  }

  it('carries hint, details, cause and path', () => {
    const cause = new Error('root cause');
    const error = new ConfigurationError('PORT: must be a number', { hint: 'fix PORT', cause, details: { value: 'x' }, path: 'PORT' });
    expect(error.hint).to.equal('fix PORT');
    expect(error.cause).to.equal(cause);
    expect(error.details).to.deep.equal({ value: 'x' });
    expect(error.path).to.equal('PORT');
    expect(new ValidationError('bad', { path: 'server' }).path).to.equal('server');
  });

  it('toString is "message: hint", or the message alone without a hint', () => {
    expect(String(new IntegrityError('sha512 mismatch', { hint: 'the tarball was altered' }))).to.equal(
      'sha512 mismatch: the tarball was altered',
    );
    expect(String(new IntegrityError('sha512 mismatch'))).to.equal('sha512 mismatch');
  });

  it('describeError gives "CODE: message: hint" and does not repeat a code already in the message', () => {
    expect(describeError(new IntegrityError('mismatch', { hint: 'republish' }))).to.equal('EINTEGRITY: mismatch: republish');
    expect(describeError(errorWith({ code: 'E404' }, 'not found'))).to.equal('E404: not found');
    expect(describeError(errorWith({ code: 'ENOENT' }, 'ENOENT: no such file'))).to.equal('ENOENT: no such file');
    expect(describeError(new Error('plain'))).to.equal('plain');
    expect(describeError(42)).to.equal('42');
  });
});

describe('errors: isRetryable', () => {
  const cases: { name: string; error: unknown; retryable: boolean }[] = [
    { name: 'ECONNRESET', error: errorWith({ code: 'ECONNRESET' }), retryable: true },
    { name: 'ECONNREFUSED', error: errorWith({ code: 'ECONNREFUSED' }), retryable: true },
    { name: 'ETIMEDOUT', error: errorWith({ code: 'ETIMEDOUT' }), retryable: true },
    { name: 'EAI_AGAIN', error: errorWith({ code: 'EAI_AGAIN' }), retryable: true },
    { name: 'EINTEGRITY code', error: errorWith({ code: 'EINTEGRITY' }), retryable: false },
    { name: 'IntegrityError', error: new IntegrityError('mismatch'), retryable: false },
    { name: 'ValidationError', error: new ValidationError('bad'), retryable: false },
    { name: 'ConfigurationError', error: new ConfigurationError('bad'), retryable: false },
    { name: 'statusCode 503', error: errorWith({ statusCode: 503 }), retryable: true },
    { name: 'statusCode 500', error: errorWith({ statusCode: 500 }), retryable: true },
    { name: 'statusCode 404', error: errorWith({ statusCode: 404 }), retryable: false },
    { name: 'statusCode 401', error: errorWith({ statusCode: 401 }), retryable: false },
    { name: 'status 429', error: errorWith({ status: 429 }), retryable: true },
    { name: 'status 408', error: errorWith({ status: 408 }), retryable: true },
    { name: 'statusCode "503" as text', error: errorWith({ statusCode: '503' }), retryable: true },
    { name: 'status beats a transient code', error: errorWith({ statusCode: 404, code: 'ECONNRESET' }), retryable: false },
    { name: 'E500 code', error: errorWith({ code: 'E500' }), retryable: true },
    { name: 'E503 code', error: errorWith({ code: 'E503' }), retryable: true },
    { name: 'E429 code', error: errorWith({ code: 'E429' }), retryable: true },
    { name: 'E404 code', error: errorWith({ code: 'E404' }), retryable: false },
    { name: 'E401 code', error: errorWith({ code: 'E401' }), retryable: false },
    { name: 'RegistryError E503', error: new RegistryError('E503', 'unavailable'), retryable: true },
    { name: 'RegistryError E404', error: new RegistryError('E404', 'no such package'), retryable: false },
    { name: 'RegistryError ECONNRESET', error: new RegistryError('ECONNRESET', 'reset'), retryable: true },
    { name: 'RegistryError marked not retryable', error: new RegistryError('E503', 'x', { retryable: false }), retryable: false },
    { name: 'StagingError with EBUSY', error: new StagingError('EBUSY', 'busy'), retryable: true },
    { name: 'StagingError with its own code', error: new StagingError('ESTAGE', 'failed'), retryable: false },
    { name: 'SmokeTestError', error: new SmokeTestError('no handshake'), retryable: false },
    { name: 'SmokeTestError marked retryable', error: new SmokeTestError('timeout', { retryable: true }), retryable: true },
    { name: 'LockError', error: new LockError('locked'), retryable: true },
    { name: 'ConflictError', error: new ConflictError('not staged'), retryable: false },
    { name: 'NotFoundError', error: new NotFoundError('no such server'), retryable: false },
    { name: 'MCPError marked retryable', error: new MCPError('EX', 'x', { retryable: true }), retryable: true },
    { name: 'UnrecoverableError', error: new UnrecoverableError('stop'), retryable: false },
    { name: 'fetch system error', error: errorWith({ type: 'system' }), retryable: true },
    { name: 'EACCES (same attempt would fail again)', error: errorWith({ code: 'EACCES' }), retryable: false },
    { name: 'EROFS', error: errorWith({ code: 'EROFS' }), retryable: false },
    { name: 'a programming error (TypeError)', error: new TypeError('x is not a function'), retryable: false },
    { name: 'fetch request-timeout', error: errorWith({ type: 'request-timeout' }), retryable: true },
    { name: 'SyntaxError of a truncated answer', error: new SyntaxError('Unexpected end of JSON input'), retryable: true },
  ];
  for (const { name, error, retryable } of cases) {
    it(`${name} is ${retryable ? '' : 'not '}retryable`, () => {
      expect(isRetryable(error)).to.equal(retryable);
    });
  }
});

describe('errors: toJobError', () => {
  it('turns a non-retryable error into an UnrecoverableError with "message: hint" and the code', () => {
    const jobError = toJobError(new IntegrityError('sha512 mismatch', { hint: 'the tarball was altered' }));
    expect(jobError).to.be.instanceOf(UnrecoverableError);
    expect(jobError.message).to.equal('sha512 mismatch: the tarball was altered');
    expect((jobError as { code?: string }).code).to.equal('EINTEGRITY');
  });

  it('turns ValidationError and a 404 into UnrecoverableError', () => {
    expect(toJobError(new ValidationError('bad server'))).to.be.instanceOf(UnrecoverableError);
    const notFound = toJobError(errorWith({ code: 'E404' }, '404 Not Found - GET /nope'));
    expect(notFound).to.be.instanceOf(UnrecoverableError);
    expect(notFound.message).to.equal('404 Not Found - GET /nope');
    expect((notFound as { code?: string }).code).to.equal('E404');
  });

  it('returns a retryable error itself, so BullMQ retries it', () => {
    const transient = errorWith({ code: 'ECONNRESET' });
    expect(toJobError(transient)).to.equal(transient);
    const lock = new LockError('locked');
    expect(toJobError(lock)).to.equal(lock);
  });

  it('returns an UnrecoverableError unchanged', () => {
    const stop = new UnrecoverableError('stop');
    expect(toJobError(stop)).to.equal(stop);
  });

  it('wraps a thrown non-Error in an Error', () => {
    const jobError = toJobError('something odd');
    expect(jobError).to.be.instanceOf(Error);
    expect(jobError.message).to.equal('something odd');
  });
});

describe('errors: backoffDelay', () => {
  const cases: { attempt: number; random: number; delay: number }[] = [
    { attempt: 1, random: 0, delay: 50 },
    { attempt: 1, random: 1, delay: 100 },
    { attempt: 2, random: 0, delay: 100 },
    { attempt: 2, random: 1, delay: 200 },
    { attempt: 3, random: 0.5, delay: 300 },
    { attempt: 4, random: 1, delay: 800 },
    { attempt: 5, random: 1, delay: 1000 },
    { attempt: 5, random: 0, delay: 500 },
    { attempt: 60, random: 1, delay: 1000 },
    { attempt: 2000, random: 1, delay: 1000 },
  ];
  for (const { attempt, random, delay } of cases) {
    it(`attempt ${attempt} with random ${random} waits ${delay} ms (base 100, max 1000)`, () => {
      expect(backoffDelay(attempt, 100, 1000, () => random)).to.equal(delay);
    });
  }

  it('stays within [ceiling/2, ceiling] with real randomness', () => {
    for (let attempt = 1; attempt <= 8; attempt++) {
      const ceiling = Math.min(5000, 100 * 2 ** (attempt - 1));
      for (let i = 0; i < 50; i++) {
        const delay = backoffDelay(attempt, 100, 5000);
        expect(delay).to.be.within(ceiling / 2, ceiling);
      }
    }
  });
});

describe('errors: retry', () => {
  it('returns at once when the first call succeeds', async () => {
    let calls = 0;
    const result = await retry(
      async () => {
        calls++;
        return 'ok';
      },
      { attempts: 3, baseDelayMs: 1 },
    );
    expect(result).to.equal('ok');
    expect(calls).to.equal(1);
  });

  it('retries transient errors until a call succeeds, passing the attempt number', async () => {
    const seen: number[] = [];
    const result = await retry(
      async (attempt) => {
        seen.push(attempt);
        if (attempt < 3) throw errorWith({ code: 'ETIMEDOUT' });
        return `ok after ${attempt}`;
      },
      { attempts: 5, baseDelayMs: 1 },
    );
    expect(result).to.equal('ok after 3');
    expect(seen).to.deep.equal([1, 2, 3]);
  });

  it('gives up after `attempts` calls and throws the last error', async () => {
    let calls = 0;
    const last = errorWith({ code: 'ECONNRESET' }, 'reset 4');
    try {
      await retry(
        async () => {
          calls++;
          throw calls === 4 ? last : errorWith({ code: 'ECONNRESET' }, `reset ${calls}`);
        },
        { attempts: 4, baseDelayMs: 1, maxDelayMs: 5 },
      );
      expect.fail('expected retry to throw');
    } catch (error) {
      expect(error).to.equal(last);
    }
    expect(calls).to.equal(4);
  });

  it('stops at once on a non-retryable error', async () => {
    let calls = 0;
    const integrity = new IntegrityError('sha512 mismatch');
    try {
      await retry(
        async () => {
          calls++;
          throw integrity;
        },
        { attempts: 5, baseDelayMs: 1 },
      );
      expect.fail('expected retry to throw');
    } catch (error) {
      expect(error).to.equal(integrity);
    }
    expect(calls).to.equal(1);
  });

  it('stops when a transient error turns into a final one', async () => {
    let calls = 0;
    try {
      await retry(
        async () => {
          calls++;
          throw calls < 2 ? errorWith({ code: 'ECONNRESET' }) : errorWith({ statusCode: 404 });
        },
        { attempts: 5, baseDelayMs: 1 },
      );
      expect.fail('expected retry to throw');
    } catch (error) {
      expect((error as { statusCode?: number }).statusCode).to.equal(404);
    }
    expect(calls).to.equal(2);
  });

  it('calls onRetry before each wait with the error, attempt and a delay within the backoff bounds', async () => {
    const retries: { attempt: number; delayMs: number; code: string }[] = [];
    try {
      await retry(
        async () => {
          throw errorWith({ code: 'EAI_AGAIN' });
        },
        {
          attempts: 4,
          baseDelayMs: 2,
          maxDelayMs: 6,
          onRetry: (error, attempt, delayMs) => retries.push({ attempt, delayMs, code: (error as { code: string }).code }),
        },
      );
      expect.fail('expected retry to throw');
    } catch (error) {
      expect((error as { code?: string }).code).to.equal('EAI_AGAIN');
    }
    expect(retries.map((r) => r.attempt)).to.deep.equal([1, 2, 3]);
    expect(retries.every((r) => r.code === 'EAI_AGAIN')).to.equal(true);
    expect(retries[0]!.delayMs).to.be.within(1, 2);
    expect(retries[1]!.delayMs).to.be.within(2, 4);
    expect(retries[2]!.delayMs).to.be.within(3, 6);
  });

  it('uses shouldRetry instead of isRetryable when given', async () => {
    let calls = 0;
    try {
      await retry(
        async () => {
          calls++;
          throw new ValidationError('normally final');
        },
        { attempts: 3, baseDelayMs: 1, shouldRetry: () => true },
      );
      expect.fail('expected retry to throw');
    } catch (error) {
      expect(error).to.be.instanceOf(ValidationError);
    }
    expect(calls).to.equal(3);
  });

  it('makes 3 attempts when attempts is explicitly undefined', async () => {
    let calls = 0;
    try {
      await retry(
        async () => {
          calls++;
          throw errorWith({ code: 'ECONNRESET' });
        },
        { attempts: undefined, baseDelayMs: 1 },
      );
      expect.fail('expected retry to throw');
    } catch (error) {
      expect((error as { code?: string }).code).to.equal('ECONNRESET');
    }
    expect(calls).to.equal(3);
  });
});
