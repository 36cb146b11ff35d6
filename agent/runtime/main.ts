// mirrorfarm-agent entry point; replaced by the daemon.
console.error("mirrorfarm-agent: not available yet in this build.");
process.exitCode = 2;
