// Preloaded (node --import) into a CLI process the bench measures: at exit it writes the process's
// peak resident set size in bytes to BENCH_PEAK_RSS_FILE (child rusage is not available in Node).
import fs from 'node:fs';

process.on('exit', () => {
  const file = process.env.BENCH_PEAK_RSS_FILE;
  if (file) fs.writeFileSync(file, String(process.resourceUsage().maxRSS * 1024));
});
