// Preloaded (node --import) into a CLI process the bench measures: at exit it writes the process's
// peak resident set size in bytes to BENCH_PEAK_RSS_FILE. From /proc (VmHWM belongs to the process
// image): getrusage's maxRSS survives exec, so a child would report its parent's peak.
import fs from 'node:fs';

function peakRss() {
  try {
    const kb = /^VmHWM:\s+(\d+) kB/m.exec(fs.readFileSync('/proc/self/status', 'utf8'))?.[1];
    if (kb) return Number(kb) * 1024;
  } catch {
    // Not Linux: fall back to getrusage.
  }
  return process.resourceUsage().maxRSS * 1024;
}

process.on('exit', () => {
  const file = process.env.BENCH_PEAK_RSS_FILE;
  if (file) fs.writeFileSync(file, String(peakRss()));
});
