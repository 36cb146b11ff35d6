import { FakeFarmFilter } from "../../../agent/drivers/farm-filter/fake";
import { farmFilterContract } from "./farm-filter.contract";

farmFilterContract("fake", "10.0.0.100", "10.0.0.101", async () => {
  const filter = new FakeFarmFilter();
  return {
    filter,
    observe: async () => filter.snapshot(),
    disturb: async () => filter.disturb(),
  };
});
