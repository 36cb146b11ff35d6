import { defineConfig } from "vitest/config";

// CI reads a plain "N passed, N failed" line, printed by .ci/run from this JSON report.
const reporters: string[] = ["default"];
const outputFile: Record<string, string> = {};
if (process.env.MIRRORFARM_TEST_JSON) {
  reporters.push("json");
  outputFile.json = process.env.MIRRORFARM_TEST_JSON;
}

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    reporters,
    outputFile,
    // Lab and FUSE tests build real namespaces and mounts; they set their own longer timeouts.
    testTimeout: 20_000,
    hookTimeout: 120_000,
    pool: "forks",
  },
});
