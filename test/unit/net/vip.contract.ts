// The one contract every VipDriver honours (fake, probe, l2 in a namespace). `present` reports
// whether traffic for the VIP would come to this node (address on the interface, /ready = 200).
import { describe, expect, it } from "vitest";
import type { VipDriver } from "../../../agent/drivers/vip/driver";

export interface VipSubject {
  driver: VipDriver;
  present(): Promise<boolean>;
  /** Loses the effect behind the driver's back (an admin removing the address), when possible. */
  disturb?(): Promise<void>;
}

export function vipDriverContract(name: string, make: () => Promise<VipSubject>, cleanup?: () => Promise<void>): void {
  describe(`VipDriver contract: ${name}`, () => {
    const fresh = async (): Promise<VipSubject> => {
      await cleanup?.();
      return make();
    };

    it("starts released and not present", async () => {
      const s = await fresh();
      expect(s.driver.held()).toBe(false);
      expect(await s.present()).toBe(false);
      await s.driver.close();
    });

    it("acquire makes it held and present; acquire again is idempotent", async () => {
      const s = await fresh();
      await s.driver.acquire();
      expect(s.driver.held()).toBe(true);
      expect(await s.present()).toBe(true);
      await s.driver.acquire();
      expect(s.driver.held()).toBe(true);
      expect(await s.present()).toBe(true);
      await s.driver.close();
    });

    it("release removes it; release when released is a no-op", async () => {
      const s = await fresh();
      await s.driver.release();
      await s.driver.acquire();
      await s.driver.release();
      expect(s.driver.held()).toBe(false);
      expect(await s.present()).toBe(false);
      await s.driver.release();
      expect(await s.present()).toBe(false);
      await s.driver.close();
    });

    it("refresh restores a lost effect while held and does nothing while released", async () => {
      const s = await fresh();
      await s.driver.refresh();
      expect(await s.present()).toBe(false);
      await s.driver.acquire();
      if (s.disturb) {
        await s.disturb();
        expect(await s.present()).toBe(false);
      }
      await s.driver.refresh();
      expect(await s.present()).toBe(true);
      expect(s.driver.held()).toBe(true);
      await s.driver.close();
    });

    it("close releases, is idempotent, and a closed driver refuses acquire naming both states", async () => {
      const s = await fresh();
      await s.driver.acquire();
      await s.driver.close();
      expect(s.driver.held()).toBe(false);
      expect(await s.present()).toBe(false);
      await s.driver.close();
      await expect(s.driver.acquire()).rejects.toThrow(/MF_VIP_ILLEGAL_TRANSITION.*from closed to held/);
    });

    it("calls run in order: the last of concurrent acquire/release wins", async () => {
      const s = await fresh();
      await Promise.all([s.driver.acquire(), s.driver.release(), s.driver.acquire()]);
      expect(s.driver.held()).toBe(true);
      expect(await s.present()).toBe(true);
      await Promise.all([s.driver.release(), s.driver.acquire(), s.driver.release()]);
      expect(s.driver.held()).toBe(false);
      expect(await s.present()).toBe(false);
      await s.driver.close();
    });
  });
}
