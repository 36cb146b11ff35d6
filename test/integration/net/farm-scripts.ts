// Node programs run inside the farm test's namespaces (node -e), shared by the farm test and the
// farm-filter benchmark.

/** Farm node: HTTP on 80 and 8080 answering the host name, a line server on 7000 answering the
 *  host name for every line (a long-lived connection to probe across bucket moves), and UDP 5353
 *  answering the host name (each datagram received is printed as "udp SRC:PORT"). */
export const FARM_SERVER = `
const http = require("http"), net = require("net"), dgram = require("dgram");
const name = process.argv[1];
let up = 0;
const ready = () => { if (++up === 4) console.log("ready"); };
const udp = dgram.createSocket("udp4");
udp.on("message", (m, r) => { console.log("udp " + r.address + ":" + r.port); udp.send(name, r.port, r.address); });
udp.bind(5353, ready);
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

/** Client batch: argv[1] = {vip, port, sources, perSource, concurrency, timeoutMs}; prints
 *  "started", then one JSON line [[source, k, body | null, error | null], ...] once every request
 *  has ended. */
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
console.log("started");
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

/** argv[1] = {vip, port, sources, timeoutMs}: one datagram from a fresh socket per source; prints
 *  one JSON line [[source, sourcePort, body | null], ...]. */
export const UDP_CLIENT = `
const dgram = require("dgram");
const cfg = JSON.parse(process.argv[1]);
Promise.all(cfg.sources.map((src) => new Promise((done) => {
  const s = dgram.createSocket("udp4");
  const finish = (body) => { clearTimeout(t); const port = s.address().port; s.close(); done([src, port, body]); };
  const t = setTimeout(() => finish(null), cfg.timeoutMs);
  s.on("message", (m) => finish(m.toString()));
  s.bind(0, src, () => s.send("who", cfg.port, cfg.vip));
}))).then((out) => console.log(JSON.stringify(out)));`;

export type BatchResult = [source: string, k: number, body: string | null, error: string | null];
