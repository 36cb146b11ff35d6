// An in-memory stand-in for the real driver, for tests of the layers above. It answers with the
// errnos Linux gives (checked by the contract test against the real driver on tmpfs); it knows only
// the files it was told exist.
import { constants } from "node:os";
import { xattrError, type XattrOp } from "./xattr-error";
import { XATTR_CREATE, XATTR_NAMESPACES, XATTR_NAME_MAX, XATTR_REPLACE, XATTR_SIZE_MAX, type Xattrs } from "./xattrs";

const E = constants.errno;

interface FakeFile {
  symlink: boolean;
  /** Insertion order is the list order. */
  attrs: Map<string, Buffer>;
}

export class MemoryXattrs implements Xattrs {
  private readonly files = new Map<string, FakeFile>();
  private closed = false;

  /** Declares that `file` exists (keeping its attributes if it already did). */
  touch(file: Buffer, kind: "file" | "symlink" = "file"): void {
    const key = file.toString("latin1");
    if (!this.files.has(key)) this.files.set(key, { symlink: kind === "symlink", attrs: new Map() });
  }

  /** Declares that `file` no longer exists; its attributes go with it. */
  delete(file: Buffer): void {
    this.files.delete(file.toString("latin1"));
  }

  async get(file: Buffer, name: string): Promise<Buffer> {
    const attrs = this.attrsFor("get", file, name);
    const value = attrs.get(name);
    if (!value) throw xattrError("get", file, name, E.ENODATA);
    return Buffer.from(value);
  }

  async list(file: Buffer): Promise<string[]> {
    return [...this.lookup("list", file, undefined).attrs.keys()];
  }

  async set(file: Buffer, name: string, value: Buffer, flags: number): Promise<void> {
    if ((flags & ~(XATTR_CREATE | XATTR_REPLACE)) !== 0) throw xattrError("set", file, name, E.EINVAL, `unknown flags ${flags}`);
    if (value.length > XATTR_SIZE_MAX) throw xattrError("set", file, name, E.E2BIG);
    const attrs = this.attrsFor("set", file, name);
    const present = attrs.has(name);
    if (present && flags & XATTR_CREATE) throw xattrError("set", file, name, E.EEXIST);
    if (!present && flags & XATTR_REPLACE) throw xattrError("set", file, name, E.ENODATA);
    attrs.set(name, Buffer.from(value));
  }

  async remove(file: Buffer, name: string): Promise<void> {
    const attrs = this.attrsFor("remove", file, name);
    if (!attrs.delete(name)) throw xattrError("remove", file, name, E.ENODATA);
  }

  async exchange(a: Buffer, b: Buffer): Promise<void> {
    if (this.closed) throw xattrError("exchange", a, b.toString(), E.EIO, "the xattr driver was closed");
    const [ka, kb] = [a.toString("latin1"), b.toString("latin1")];
    if (!this.files.has(ka) || !this.files.has(kb)) throw xattrError("exchange", a, b.toString(), E.ENOENT);
    // Each name, and what is below it, takes the other's place.
    const moved = [...this.files].map(([key, f]): [string, FakeFile] => {
      for (const [from, to] of [[ka, kb], [kb, ka]] as const) if (key === from || key.startsWith(`${from}/`)) return [to + key.slice(from.length), f];
      return [key, f];
    });
    this.files.clear();
    for (const [key, f] of moved) this.files.set(key, f);
  }

  async close(): Promise<void> {
    this.closed = true;
  }

  private lookup(op: XattrOp, file: Buffer, name: string | undefined): FakeFile {
    if (this.closed) throw xattrError(op, file, name, E.EIO, "the xattr driver was closed");
    if (name !== undefined && (name.length === 0 || name.length > XATTR_NAME_MAX)) throw xattrError(op, file, name, E.ERANGE);
    const f = this.files.get(file.toString("latin1"));
    if (!f) throw xattrError(op, file, name, E.ENOENT);
    return f;
  }

  /** The checks Linux makes in this order: name, file, user.* on a symlink, then the namespace. */
  private attrsFor(op: XattrOp, file: Buffer, name: string): Map<string, Buffer> {
    const f = this.lookup(op, file, name);
    // Linux keeps user.* to regular files and directories: writing one on a symlink is EPERM.
    if (f.symlink && name.startsWith("user.")) throw xattrError(op, file, name, op === "get" ? E.ENODATA : E.EPERM);
    // system.* holds ACLs, which a filesystem validates: not faked.
    const ns = XATTR_NAMESPACES.find((p) => name.startsWith(p));
    if (!ns) throw xattrError(op, file, name, E.ENOTSUP);
    if (name.length === ns.length) throw xattrError(op, file, name, E.EINVAL);
    return f.attrs;
  }
}
