/**
 * Runs a driver's operations one at a time, in call order, so that a release issued while an
 * acquire is still running takes effect after it (the last call wins). Shared by the network
 * drivers (vip, farm-filter).
 */
export class SerialQueue {
  private tail: Promise<unknown> = Promise.resolve();

  run<T>(op: () => Promise<T>): Promise<T> {
    const result = this.tail.then(op, op);
    this.tail = result.catch(() => undefined);
    return result;
  }
}
