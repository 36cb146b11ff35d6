// The deployer contract against the in-memory fake (no root needed).
import { fakeDeployer } from "../../../components/onprem/deployer/fake";
import { deployerContract } from "./contract";

const KEY = "-----BEGIN OPENSSH PRIVATE KEY-----\nZmFrZS1rZXk=\n-----END OPENSSH PRIVATE KEY-----\n";
const OTHER = "-----BEGIN OPENSSH PRIVATE KEY-----\nb3RoZXIta2V5\n-----END OPENSSH PRIVATE KEY-----\n";
const HOST_KEY = `SHA256:${"f".repeat(43)}`;

deployerContract("in-memory fake", true, async () => {
  const deployer = fakeDeployer({ "10.0.0.1": { hostKey: HOST_KEY, authorizedKeys: [KEY], user: "root", systemd: false } });
  return {
    deployer,
    target: { host: "10.0.0.1", user: "root", privateKey: KEY, hostKey: HOST_KEY },
    otherKey: OTHER,
    crashAgent: async (node) => deployer.crashAgent("10.0.0.1", node),
  };
});
