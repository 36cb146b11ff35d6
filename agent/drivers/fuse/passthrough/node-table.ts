// Node ids <-> names in the backing directory, with the kernel's lookup counts.
//
// A node is one backing inode (hard links share a node, as the kernel expects). It knows the
// names it is reachable by, as (parent node, name) links, so its path follows renames of any
// ancestor for free. Ids are never reused (generation 0 is then always right). A node leaves the
// table only when the kernel forgets every lookup it was given.
import { Errno, FuseError } from "../errno";
import { FUSE_ROOT_ID } from "../protocol/constants";

export interface Node {
  readonly id: number;
  ino: bigint;
  /** References the kernel holds (each LOOKUP/CREATE/MKDIR/... reply adds one; FORGET removes). */
  lookups: number;
  /** Names of this inode: key `${parent}/${name}`. */
  readonly links: Map<string, { parent: number; name: string }>;
  /** Open file handles of this node, to stat it once it has no name. */
  readonly openFds: Set<number>;
}

const linkKey = (parent: number, name: string) => `${parent}/${name}`;

export class NodeTable {
  private readonly nodes = new Map<number, Node>();
  private readonly byIno = new Map<bigint, Node>();
  private readonly byLink = new Map<string, Node>();
  private nextId = FUSE_ROOT_ID + 1;
  readonly root: Node;

  constructor(rootIno: bigint) {
    this.root = { id: FUSE_ROOT_ID, ino: rootIno, lookups: 1, links: new Map(), openFds: new Set() };
    this.nodes.set(FUSE_ROOT_ID, this.root);
  }

  get size(): number {
    return this.nodes.size;
  }

  get(id: number): Node {
    const node = this.nodes.get(id);
    if (!node) throw new FuseError(Errno.ENOENT, `unknown node ${id}`);
    return node;
  }

  /** The node's path relative to the root, or null when it has no name left (unlinked). */
  pathOf(node: Node): string | null {
    if (node.id === FUSE_ROOT_ID) return "";
    for (const { parent, name } of node.links.values()) {
      const p = this.nodes.get(parent);
      const pp = p ? this.pathOf(p) : null;
      if (pp !== null) return pp === "" ? name : `${pp}/${name}`;
    }
    return null;
  }

  /** Path of `name` inside directory node `parent`; ENOENT if the parent has no name any more. */
  childPath(parent: number, name: string): string {
    const pp = this.pathOf(this.get(parent));
    if (pp === null) throw new FuseError(Errno.ENOENT, `directory node ${parent} was removed`);
    return pp === "" ? name : `${pp}/${name}`;
  }

  /** Every node the kernel holds, and every name it was given for them. */
  known(): { nodes: number[]; names: { parent: number; name: string }[] } {
    const nodes: number[] = [];
    const names: { parent: number; name: string }[] = [];
    for (const node of this.nodes.values()) {
      nodes.push(node.id);
      names.push(...node.links.values());
    }
    return { nodes, names };
  }

  /** Records that (parent, name) is inode `ino` and gives the kernel one more reference to it. */
  remember(parent: number, name: string, ino: bigint): Node {
    const key = linkKey(parent, name);
    const previous = this.byLink.get(key);
    if (previous && previous.ino !== ino) this.dropLink(previous, key);
    let node = this.byIno.get(ino);
    if (!node) {
      node = { id: this.nextId++, ino, lookups: 0, links: new Map(), openFds: new Set() };
      this.nodes.set(node.id, node);
      this.byIno.set(ino, node);
    }
    node.links.set(key, { parent, name });
    this.byLink.set(key, node);
    node.lookups++;
    return node;
  }

  forget(id: number, nlookup: number): void {
    const node = this.nodes.get(id);
    if (!node || id === FUSE_ROOT_ID) return;
    node.lookups -= nlookup;
    if (node.lookups > 0) return;
    this.nodes.delete(id);
    for (const key of node.links.keys()) if (this.byLink.get(key) === node) this.byLink.delete(key);
    if (this.byIno.get(node.ino) === node) this.byIno.delete(node.ino);
  }

  /** (parent, name) no longer exists (unlink, rmdir, or replaced by a rename). */
  removeName(parent: number, name: string): void {
    const key = linkKey(parent, name);
    const node = this.byLink.get(key);
    if (node) this.dropLink(node, key);
  }

  rename(parent: number, name: string, newParent: number, newName: string): void {
    const key = linkKey(parent, name);
    const node = this.byLink.get(key);
    const newKey = linkKey(newParent, newName);
    // Two hard links of one inode: rename(2) leaves both names in place.
    if (node && this.byLink.get(newKey) === node) return;
    this.removeName(newParent, newName);
    if (!node) return;
    this.dropLink(node, key);
    this.addLink(node, newKey, newParent, newName);
  }

  /** The two names swap what they point to (RENAME_EXCHANGE). */
  exchange(parent: number, name: string, otherParent: number, otherName: string): void {
    const [ka, kb] = [linkKey(parent, name), linkKey(otherParent, otherName)];
    const [na, nb] = [this.byLink.get(ka), this.byLink.get(kb)];
    if (na === nb) return; // two hard links of one inode (or both unknown): nothing changes
    if (na) this.dropLink(na, ka);
    if (nb) this.dropLink(nb, kb);
    if (na) this.addLink(na, kb, otherParent, otherName);
    if (nb) this.addLink(nb, ka, parent, name);
  }

  private addLink(node: Node, key: string, parent: number, name: string): void {
    node.links.set(key, { parent, name });
    this.byLink.set(key, node);
    this.byIno.set(node.ino, node);
  }

  private dropLink(node: Node, key: string): void {
    node.links.delete(key);
    if (this.byLink.get(key) === node) this.byLink.delete(key);
    // A nameless inode may be freed and its number reused by a new file: that one gets a new node.
    if (node.links.size === 0 && this.byIno.get(node.ino) === node) this.byIno.delete(node.ino);
  }
}
