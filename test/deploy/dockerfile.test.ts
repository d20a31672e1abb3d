import { execFileSync, spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, symlinkSync } from 'node:fs';
import { builtinModules } from 'node:module';
import { tmpdir } from 'node:os';
import { basename, dirname, join, relative } from 'node:path';
import dockerignoreModule from '@balena/dockerignore';
import { afterAll, describe, expect, it } from 'vitest';
import { hostLibrary } from '../../bench/processes.js';
import { freePort, killChildren, tollgate } from '../support/processes.js';

// No Docker engine runs on the test machines (the GitHub workflow builds the real image). These
// tests read the Dockerfile and .dockerignore and do what a build would do with the same files:
// every COPY finds its sources in the build context, the build stage's commands compile, and the
// runtime stage's layout (and only it) serves.

interface Instruction {
  stage: string;
  op: string;
  flags: Record<string, string>;
  args: string[];
  text: string;
}

/** The Dockerfile's instructions, continuation lines joined, each tagged with its stage. */
function instructions(source: string): Instruction[] {
  const joined = source.replace(/\\\n/g, ' ').split('\n').map((l) => l.trim()).filter((l) => l !== '' && !l.startsWith('#'));
  let stage = '';
  return joined.map((line) => {
    const [op, ...rest] = line.split(/\s+/);
    const text = line.slice(op!.length).trim();
    if (op === 'FROM') stage = /\bAS\s+(\S+)/i.exec(text)?.[1] ?? '';
    const flags: Record<string, string> = {};
    const args: string[] = [];
    for (const word of rest) {
      const flag = /^--([a-z-]+)=(.*)$/.exec(word);
      if (flag && args.length === 0) flags[flag[1]!] = flag[2]!;
      else args.push(word);
    }
    return { stage, op: op!.toUpperCase(), flags, args, text };
  });
}

// A CommonJS module whose typings declare an ES default export.
const dockerignore = dockerignoreModule as unknown as typeof dockerignoreModule.default;
const dockerfile = instructions(readFileSync('Dockerfile', 'utf8'));
const ignore = dockerignore({ ignorecase: false }).add(readFileSync('.dockerignore', 'utf8').split('\n'));
/** What `docker build .` sends from a clean clone: the tracked files .dockerignore lets through. */
const context = execFileSync('git', ['ls-files', '-z'], { encoding: 'utf8' }).split('\0').filter((f) => f !== '' && !ignore.ignores(f));

function contextFilesUnder(source: string): string[] {
  const path = source.replace(/^\.\//, '').replace(/\/$/, '');
  return context.filter((f) => f === path || f.startsWith(`${path}/`));
}

const stage = (name: string) => dockerfile.filter((i) => i.stage === name);
const finalStage = dockerfile.at(-1)!.stage;
const copies = dockerfile.filter((i) => i.op === 'COPY');

/** `COPY a b ./` from the context into `into` (the stage's WORKDIR), as the build would. */
function copyFromContext(instruction: Instruction, into: string) {
  const destination = instruction.args.at(-1)!;
  for (const source of instruction.args.slice(0, -1)) {
    const files = contextFilesUnder(source);
    const single = files.length === 1 && files[0] === source.replace(/^\.\//, '');
    for (const file of files) {
      const target = destination.endsWith('/') && single ? join(into, destination, file.split('/').pop()!) : join(into, destination, single ? '' : relative(source.replace(/^\.\//, ''), file));
      mkdirSync(dirname(target), { recursive: true });
      cpSync(file, target);
    }
  }
}

/** Where the repository's installed packages stand in for `npm ci` (no registry in a test). */
function linkPackages(into: string) {
  mkdirSync(into, { recursive: true });
  symlinkSync(join(process.cwd(), 'node_modules'), join(into, 'node_modules'), 'dir');
}

const workDirs: string[] = [];
afterAll(() => {
  killChildren();
  for (const dir of workDirs) rmSync(dir, { recursive: true, force: true });
});

describe('Dockerfile', () => {
  it('finds every COPY source in the build context .dockerignore leaves', () => {
    const missing = copies
      .filter((c) => !c.flags.from)
      .flatMap((c) => c.args.slice(0, -1))
      .filter((source) => contextFilesUnder(source).length === 0);
    expect(missing).toEqual([]);
    // The context stays small: no tests, docs, deploy files or installed packages.
    expect(context.some((f) => f.startsWith('node_modules/') || f.startsWith('test/') || f.startsWith('docs/'))).toBe(false);
  });

  it('runs the runtime as a non-root user with a health check, `serve` by default', () => {
    const runtime = stage(finalStage);
    expect(runtime.find((i) => i.op === 'USER')?.args[0]).toMatch(/^(?!root$|0$)\w+/);
    expect(runtime.some((i) => i.op === 'HEALTHCHECK' && i.text.includes('/healthz'))).toBe(true);
    expect(runtime.find((i) => i.op === 'ENTRYPOINT')?.text).toBe('["tollgate"]');
    expect(runtime.find((i) => i.op === 'CMD')?.text).toBe('["serve"]');
    // Only compiled code and production packages reach the runtime stage.
    expect(runtime.filter((i) => i.op === 'COPY' && i.flags.from).map((i) => i.flags.from).sort()).toEqual(['build', 'deps']);
    expect(stage('deps').some((i) => i.op === 'RUN' && /npm ci\b.*--omit=dev/.test(i.text))).toBe(true);
  });

  it('builds with the build stage\'s own commands and serves from the runtime stage\'s layout alone', async () => {
    const root = mkdtempSync(join(tmpdir(), 'tollgate-image-'));
    workDirs.push(root);
    const build = join(root, 'build');
    const runtime = join(root, 'runtime');
    for (const i of stage('build')) {
      if (i.op === 'COPY') copyFromContext(i, build);
      else if (i.op === 'RUN' && /^npm ci\b/.test(i.text)) linkPackages(build);
      else if (i.op === 'RUN') {
        // Only the project's own build script is run here; anything else must be taught to this test.
        expect(i.text).toMatch(/^npm run build$/);
        const result = spawnSync('npm', ['run', 'build', '--silent'], { cwd: build, encoding: 'utf8' });
        expect(result.status, result.stdout + result.stderr).toBe(0);
      }
    }
    const env: Record<string, string> = {};
    for (const i of stage(finalStage)) {
      if (i.op === 'ENV') for (const [, name, quoted, bare] of i.text.matchAll(/(\w+)=(?:"([^"]*)"|(\S+))/g)) env[name!] = quoted ?? bare!;
      if (i.op !== 'COPY') continue;
      if (i.flags.from === 'deps') linkPackages(runtime);
      else if (i.flags.from === 'build') cpSync(join(build, i.args[0]!.replace(/^\/app\/?/, '')), join(runtime, i.args[1]!), { recursive: true });
      else copyFromContext(i, runtime);
    }
    expect(existsSync(join(runtime, 'src')), 'sources stay out of the runtime').toBe(false);
    // The image caps the JavaScript heap (docs/operations.md, "Memory"); the server below starts under it.
    expect(env.NODE_OPTIONS).toMatch(/--max-old-space-size=\d+/);
    // It runs on jemalloc (the same section): the runtime stage installs the library and links it
    // where LD_PRELOAD names it. Here the server preloads this machine's copy of the same package.
    const install = stage(finalStage).find((i) => i.op === 'RUN' && i.text.includes('libjemalloc2'));
    expect(install?.text).toContain(`ln -s "$(dpkg -L libjemalloc2 | grep '/libjemalloc\\.so\\.2$')" ${env.LD_PRELOAD}`);
    const jemalloc = hostLibrary(basename(env.LD_PRELOAD!));
    if (jemalloc) env.LD_PRELOAD = jemalloc;
    else {
      if (process.env.CI === 'true' || process.env.CI === '1') throw new Error('CI=true: the image\'s allocator must be checked, and libjemalloc2 is not installed (apt-get install libjemalloc2)');
      console.warn('The image\'s jemalloc is not checked: libjemalloc2 is not installed here (apt-get install libjemalloc2; required in CI).');
      delete env.LD_PRELOAD;
    }

    const port = await freePort();
    const dataDir = join(root, 'data');
    const server = tollgate(['serve'], { ...env, TOLLGATE_HOST: '127.0.0.1', TOLLGATE_PORT: String(port), TOLLGATE_DATA_DIR: dataDir, TOLLGATE_ADMIN_TOKEN: 'tga_image_test_0123456789abcdef', LOG_LEVEL: 'info' }, {
      cwd: runtime,
      entry: join(runtime, 'dist/cli.js'),
    });
    await server.waitFor(/Server listening at/);
    if (jemalloc) {
      expect(readFileSync(`/proc/${server.child.pid}/maps`, 'utf8')).toContain(jemalloc);
      // The image's MALLOC_CONF reached it: jemalloc gives memory back from threads of its own.
      expect(env.MALLOC_CONF).toContain('background_thread:true');
      const threads = readdirSync(`/proc/${server.child.pid}/task`).map((task) => readFileSync(`/proc/${server.child.pid}/task/${task}/comm`, 'utf8').trim());
      expect(threads).toContain('jemalloc_bg_thd');
    }
    // The image's own HEALTHCHECK command, as Docker would run it.
    const healthcheck = JSON.parse(/CMD\s+(\[.*\])$/.exec(stage(finalStage).find((i) => i.op === 'HEALTHCHECK')!.text)![1]!) as string[];
    const check = spawnSync(healthcheck[0]!, healthcheck.slice(1), { env: { ...process.env, TOLLGATE_PORT: String(port) }, encoding: 'utf8' });
    expect(check.status, check.stderr).toBe(0);
    const base = `http://127.0.0.1:${port}`;
    expect((await fetch(`${base}/readyz`)).status).toBe(200);
    const graphql = await fetch(`${base}/graphql`, {
      method: 'POST',
      headers: { authorization: 'Bearer tga_image_test_0123456789abcdef', 'content-type': 'application/json' },
      body: JSON.stringify({ query: '{ products(limit: 1) { has_more } }' }),
    });
    expect(graphql.status, await graphql.clone().text()).toBe(200);
    // The dashboard the build stage built, served from the runtime's dist/app.
    const app = await fetch(`${base}/app/`);
    expect(app.status).toBe(200);
    expect(await app.text()).toMatch(/<div id="root">/);
    killChildren();
  });

  it('compiled code imports only production dependencies and Node built-ins', () => {
    const pkg = JSON.parse(readFileSync('package.json', 'utf8'));
    const allowed = new Set([...Object.keys(pkg.dependencies), ...builtinModules, ...builtinModules.map((m) => `node:${m}`)]);
    const sources: string[] = [];
    const walk = (dir: string) => {
      for (const entry of readdirSync(dir)) {
        const path = join(dir, entry);
        if (statSync(path).isDirectory()) walk(path);
        else if (path.endsWith('.ts')) sources.push(path);
      }
    };
    walk('src');
    const imported = new Set<string>();
    for (const file of sources) {
      const text = readFileSync(file, 'utf8');
      const specs = [...text.matchAll(/(?:^|\n)\s*(?:import|export)(?!\s+type\b)[^'";]*?from\s+['"]([^'"]+)['"]/g), ...text.matchAll(/(?:^|\n)\s*import\s+['"]([^'"]+)['"]/g), ...text.matchAll(/\bimport\(\s*['"]([^'"]+)['"]\s*\)/g)];
      for (const [, spec] of specs) {
        if (spec!.startsWith('.')) continue;
        imported.add(spec!.startsWith('@') ? spec!.split('/').slice(0, 2).join('/') : spec!.split('/')[0]!);
      }
    }
    expect([...imported].filter((name) => !allowed.has(name)).sort()).toEqual([]);
  });
});
