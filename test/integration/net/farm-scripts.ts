// Node programs run inside the farm test's namespaces (node -e), shared by the farm test and the
// farm-filter benchmark.

/** Farm node: HTTP on 80 and 8080 answering the host name, and a line server on 7000 answering
 *  the host name for every line (a long-lived connection to probe across bucket moves). */
export const FARM_SERVER = `
const http = require("http"), net = require("net");
const name = process.argv[1];
let up = 0;
const ready = () => { if (++up === 3) console.log("ready"); };
for (const port of [80, 8080]) {
  const srv = http.createServer((q, s) => { s.setHeader("connection", "close"); s.end(name); });
  srv.listen(port, ready);
}
net.createServer((c) => {
  c.setEncoding("utf8");
  c.on("error", () => {});
  let buf = "";
  c.on("data", (d) => {
    buf += d;
    for (let i = buf.indexOf("\\n"); i >= 0; i = buf.indexOf("\\n")) { buf = buf.slice(i + 1); c.write(name + "\\n"); }
  });
}).listen(7000, ready);`;

/** Client batch: argv[1] = {vip, port, sources, perSource, concurrency, timeoutMs}; prints one JSON
 *  line [[source, k, body | null, error | null], ...] once every request has ended. */
export const BATCH_CLIENT = `
const http = require("http");
const cfg = JSON.parse(process.argv[1]);
const jobs = [];
for (const src of cfg.sources) for (let k = 0; k < cfg.perSource; k++) jobs.push([src, k]);
const out = [];
let next = 0;
function one() {
  if (next >= jobs.length) return Promise.resolve();
  const [src, k] = jobs[next++];
  return new Promise((done) => {
    const req = http.get({ host: cfg.vip, port: cfg.port, path: "/", localAddress: src, agent: false, timeout: cfg.timeoutMs }, (res) => {
      let body = "";
      res.on("data", (d) => (body += d));
      res.on("end", () => { out.push([src, k, body, null]); done(); });
    });
    req.on("timeout", () => req.destroy(new Error("timeout")));
    req.on("error", (e) => { out.push([src, k, null, e.message]); done(); });
  }).then(one);
}
Promise.all(Array.from({ length: cfg.concurrency }, one)).then(() => console.log(JSON.stringify(out)));`;

/** One long-lived connection from argv[3] to argv[1]:argv[2]; stdin lines are sent, each answer
 *  line is printed as "reply NAME". */
export const LINE_CLIENT = `
const net = require("net");
const s = net.connect({ host: process.argv[1], port: Number(process.argv[2]), localAddress: process.argv[3] }, () => console.log("connected"));
s.setEncoding("utf8");
let buf = "";
s.on("data", (d) => {
  buf += d;
  for (let i = buf.indexOf("\\n"); i >= 0; i = buf.indexOf("\\n")) { console.log("reply " + buf.slice(0, i)); buf = buf.slice(i + 1); }
});
s.on("error", (e) => console.log("error " + e.message));
s.on("close", () => { console.log("closed"); process.exit(0); });
process.stdin.setEncoding("utf8");
process.stdin.on("data", (d) => s.write(d));`;

export type BatchResult = [source: string, k: number, body: string | null, error: string | null];
