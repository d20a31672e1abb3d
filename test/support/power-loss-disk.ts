import { cpSync, fstatSync, fsyncSync, lstatSync, mkdirSync, readFileSync, readdirSync, readlinkSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';

/**
 * What a disk keeps of a data directory through a power loss, at worst: only what was fsynced.
 *
 * It starts as a copy of the directory taken while nothing writes to it. From then on a file's
 * content reaches this copy only when the file is fsynced (its content at that moment), and a
 * directory's entries (files created, renamed or removed) only when the directory is: a file never
 * fsynced keeps its old content, or none if it is new. Pass `sync` as the database's fsync; open
 * `dir` after the "power loss" to see what survived.
 */
export class PowerLossDisk {
  /** File content as of each inode's last fsync. */
  private readonly synced = new Map<number, Buffer>();
  /** The inode each file of the copy stands for, by path relative to the data directory. */
  private readonly inodes = new Map<string, number>();

  constructor(
    private readonly dataDir: string,
    readonly dir: string,
  ) {
    cpSync(dataDir, dir, { recursive: true });
    this.recordInodes('');
  }

  readonly sync = (fd: number): void => {
    fsyncSync(fd);
    const stat = fstatSync(fd);
    if (stat.isDirectory()) return this.syncDirectory(relative(this.dataDir, readlinkSync(`/proc/self/fd/${fd}`)));
    const inode = stat.ino;
    const content = readFileSync(`/proc/self/fd/${fd}`);
    this.synced.set(inode, content);
    for (const [file, fileInode] of this.inodes) if (fileInode === inode) writeFileSync(join(this.dir, file), content);
  };

  private syncDirectory(rel: string) {
    const onDisk = join(this.dir, rel);
    mkdirSync(onDisk, { recursive: true });
    const names = new Set(readdirSync(join(this.dataDir, rel)));
    for (const name of readdirSync(onDisk)) {
      if (names.has(name)) continue;
      rmSync(join(onDisk, name), { recursive: true, force: true });
      for (const file of this.inodes.keys()) if (file === join(rel, name) || file.startsWith(join(rel, name) + '/')) this.inodes.delete(file);
    }
    for (const name of names) {
      const file = join(rel, name);
      const stat = lstatSync(join(this.dataDir, file));
      if (stat.isDirectory()) mkdirSync(join(this.dir, file), { recursive: true });
      else if (this.inodes.get(file) !== stat.ino) {
        this.inodes.set(file, stat.ino);
        writeFileSync(join(this.dir, file), this.synced.get(stat.ino) ?? Buffer.alloc(0));
      }
    }
  }

  private recordInodes(rel: string) {
    for (const name of readdirSync(join(this.dataDir, rel))) {
      const file = join(rel, name);
      const stat = statSync(join(this.dataDir, file));
      if (stat.isDirectory()) this.recordInodes(file);
      else this.inodes.set(file, stat.ino);
    }
  }
}
