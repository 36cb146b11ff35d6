/** Single-quotes a value for /bin/sh. */
export function shellQuote(value: string): string {
  return `'${value.replace(/'/g, `'\\''`)}'`;
}

/**
 * Script lines that keep a distro's systemd unit from ever starting the application (boot,
 * package upgrades): the agent alone starts it, where the cluster says. Stopped now, and masked.
 */
export function keepUnitAway(unit: string): string {
  return `if command -v systemctl >/dev/null 2>&1; then systemctl mask --now ${shellQuote(unit)} || exit 1; fi\n`;
}

/** The system directories appended to whatever PATH the agent has (runuser, nginx live in sbin). */
export const SYSTEM_PATH = `PATH="$PATH:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"\n`;
