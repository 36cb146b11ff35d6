export * from "./agent-config";
export * from "./firewall";
export * from "./probe";
export * from "./bootstrap";
export { sha256Hex, clusterConfigHash, farmSeed } from "./hash";
export { checkers as planCheckers, shellQuote } from "./app-module";
