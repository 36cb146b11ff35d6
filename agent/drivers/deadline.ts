// Waiting for something with a deadline, for the drivers' stops (an unmount, a helper's exit).

/** Whether `p` settles within `ms` (a rejection counts as settled); the timer never outlives it. */
export function settlesWithin(p: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), ms)));
  const settled = p.then(
    () => true,
    () => true,
  );
  return Promise.race([settled, late]).finally(() => clearTimeout(timer));
}
