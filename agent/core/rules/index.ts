// Failover rules (checker results -> restart | stopstart | swap | stop, with a loop limit).
// RulesConfig is shaped so that `{ checkers: config.checkers, ...config.failover }` from the agent
// config fits it as is.
export * from "./rules";
