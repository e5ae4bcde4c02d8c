import { expect } from 'chai';
import { OutputExcerpt, STDERR_TAIL_BYTES } from '../shared/smokeTest.js';

function excerpt(chunks: string[], limit = 80): string {
  const output = new OutputExcerpt(limit);
  for (const chunk of chunks) output.push(chunk);
  return output.toString();
}

describe('smoke test output excerpt', () => {
  it('keeps short output whole, however it arrives', () => {
    expect(excerpt(['Error: no ', 'token\n', 'bye\n'])).to.equal('Error: no token\nbye');
    expect(excerpt(['x'.repeat(80)])).to.equal('x'.repeat(80));
  });

  it('keeps the reason printed first and the last lines when a usage text follows', () => {
    const usage = Array.from({ length: 60 }, (_, index) => `  --option-${index}  what option ${index} does`).join('\n');
    const text = excerpt(
      [
        'Error: No access token was provided. Pass one with --access-token or set SENTRY_ACCESS_TOKEN.\n',
        `Usage: server [options]\n${usage}\n`,
        'see the docs\n',
      ],
      STDERR_TAIL_BYTES,
    );
    expect(text.startsWith('Error: No access token was provided. Pass one with --access-token or set SENTRY_ACCESS_TOKEN.')).to.equal(true);
    expect(text).to.include('\n[…]\n');
    expect(text.endsWith('--option-59  what option 59 does\nsee the docs')).to.equal(true);
    expect(Buffer.byteLength(text)).to.be.at.most(STDERR_TAIL_BYTES + 10);
  });

  it('never shows a word cut in half at either side of the gap, so a secret is whole or absent', () => {
    const secret = 'sk-live-0123456789abcdef0123456789';
    // The secret straddles the head's end, then again the tail's start.
    const text = excerpt([`start ${secret} ${'filler '.repeat(30)}${secret} end`], 60);
    for (const word of text.replace('[…]', '').split(/\s+/).filter(Boolean)) {
      expect(['start', secret, 'filler', 'end'], word).to.include(word);
    }
    expect(text).to.include('[…]');
  });

  it('shows only the tail when the head is one unbroken token', () => {
    const text = excerpt(['A'.repeat(40), ' tail words here'], 40);
    expect(text).to.equal('[…]\ntail words here');
  });
});
