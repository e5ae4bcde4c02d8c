/*
 * The Chromium a browser test drives: CHROMIUM_PATH when set, else Debian's /usr/bin/chromium when
 * installed, else the headless Chromium that the dev dependency @sparticuz/chromium ships inside
 * its npm package (unpacked into the temp directory on first use). Never downloads a browser.
 */
import fs from 'node:fs';

export const SYSTEM_CHROMIUM = '/usr/bin/chromium';

export async function chromiumExecutable(): Promise<string> {
  const configured = process.env.CHROMIUM_PATH;
  if (configured) {
    if (!fs.existsSync(configured))
      throw new Error(`CHROMIUM_PATH=${configured} does not exist: unset it to use ${SYSTEM_CHROMIUM} or the packaged Chromium`);
    return configured;
  }
  if (fs.existsSync(SYSTEM_CHROMIUM)) return SYSTEM_CHROMIUM;
  const { default: packaged } = await import('@sparticuz/chromium');
  return packaged.executablePath();
}
