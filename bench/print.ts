// npx tsx bench/print.ts bench/results/<timestamp>.json
// Prints a saved run's tables again, as `npm run bench` printed them at its end: its figures and
// issue 6's targets against them (the README's "Performance" tables come from here).
import { readFileSync } from 'node:fs';
import { printTable, printTargets, type RunResult } from './report.js';

const file = process.argv[2];
if (!file) throw new Error('usage: npx tsx bench/print.ts bench/results/<timestamp>.json');
const result = JSON.parse(readFileSync(file, 'utf8')) as RunResult;
process.stdout.write(`${printTable(result)}\n${printTargets(result)}`);
