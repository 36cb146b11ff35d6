// The application modules' contract, for each module with the lab's and a real server's
// arguments, and the PostgreSQL module's start script run for real against stand-in binaries:
// it initialises the data directory only when it is empty.
import { spawnSync } from "node:child_process";
import * as crypto from "node:crypto";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { LAB_APPS, labAppModule } from "../../../agent/lab/apps";
import { applicationModule, applicationPassword, applicationUrl, checkers as planCheckers } from "../../../components/plan/app-module";
import { applicationModules, resolveSpec } from "../../../components/spec";
import type { ApplicationModule } from "../../../components/spec/types";
import { agentScripts, demoModule, nginxModule, pgdataOf, postgresqlModule, scramVerifier, scriptFiles, SCRIPT_FILES, type AppModule } from "../../../templates/modules";
import { needsRoot } from "../../support/privileges";
import { testSecrets } from "./fixtures";

const secrets = testSecrets(["a", "b"]);

function realServerSpec(application: ApplicationModule, kind: "mirror" | "farm") {
  const extra: Record<ApplicationModule, object> = {
    postgresql: {},
    mysql: {},
    nginx: kind === "mirror" ? { replicatedDirs: [{ path: "/srv/www" }] } : {},
    apache: kind === "mirror" ? { replicatedDirs: [{ path: "/srv/www" }] } : {},
    docker: { dockerImage: "nginx:1.27", appPorts: [8080], ...(kind === "mirror" ? { replicatedDirs: [{ path: "/srv/app" }] } : {}) },
    generic: { serviceName: "app", appPorts: [9000], ...(kind === "mirror" ? { replicatedDirs: [{ path: "/srv/app" }] } : {}) },
    demo: {},
  };
  return resolveSpec({ clusterName: "c", kind, nodes: [{ name: "a" }, { name: "b" }], application, ...extra[application] });
}

const modules: Array<[string, AppModule]> = [
  ...LAB_APPS.map((app): [string, AppModule] => [`lab ${app}`, labAppModule(app, { subnet: 7, password: "0123456789abcdef" })]),
  ...applicationModules.flatMap((app) =>
    (["mirror", "farm"] as const).map((kind): [string, AppModule] => [`${kind} ${app}`, applicationModule(realServerSpec(app, kind), secrets)]),
  ),
];

describe("application modules", () => {
  it.each(modules)("%s: start and stop scripts /bin/sh accepts, a checker on one of its ports, a URL on the host", (_, mod) => {
    expect(mod.ports.length).toBeGreaterThan(0);
    expect(mod.checkers.length).toBeGreaterThan(0);
    for (const c of mod.checkers) expect(mod.ports).toContain(c.port);
    const scripts = agentScripts(mod);
    expect(scripts.start_prim?.args).toEqual(["-c", mod.scripts.start_prim.text]);
    expect(scripts.stop_prim?.args).toEqual(["-c", mod.scripts.stop_prim.text]);
    for (const name of ["start_prim", "stop_prim"] as const) expect(mod.scripts[name].text.trim()).not.toBe("");
    for (const [name, s] of Object.entries(mod.scripts)) {
      const syntax = spawnSync("/bin/sh", ["-n", "-c", s.text], { encoding: "utf8" });
      expect(syntax.status, `${name}: ${syntax.stderr}`).toBe(0);
    }
    expect(mod.url("10.0.0.9")).toContain("10.0.0.9");
    // Installed as files (the lab), the agent runs the same texts from them.
    const files = scriptFiles(mod);
    const installed = agentScripts(mod, "/opt/app");
    for (const [name, s] of Object.entries(mod.scripts)) {
      const file = SCRIPT_FILES[name as keyof typeof SCRIPT_FILES];
      expect(files[file]).toBe(`#!/bin/sh\n${s.text}`);
      expect(installed[name as keyof typeof installed]).toEqual({ path: "/bin/sh", args: [`/opt/app/${file}`], timeoutMs: s.timeoutMs });
    }
  });

  it("PostgreSQL keeps its data directory inside the replicated directory, in the lab and on a real server", () => {
    const lab = labAppModule("postgresql", { subnet: 7, password: "0123456789abcdef" });
    const real = applicationModule(realServerSpec("postgresql", "mirror"), secrets);
    for (const mod of [lab, real]) {
      const dir = mod.replicatedDirs[0];
      expect(mod.replicatedDirs).toHaveLength(1);
      const pgdata = mod.scripts.start_prim.text.match(/^PGDATA='([^']+)'$/m)?.[1];
      expect(pgdata).toBe(pgdataOf(dir?.path ?? ""));
      expect(pgdata?.startsWith(`${dir?.path}/`)).toBe(true);
    }
    expect(lab.replicatedDirs[0]).toEqual({ path: "/var/lib/postgresql/mirrorfarm", backing: "/var/lib/postgresql/.mirrorfarm-backing" });
    expect(real.replicatedDirs[0]).toEqual({ path: "/var/lib/postgresql", backing: "/var/lib/mirrorfarm/backing/var/lib/postgresql" });
  });

  it("gives PostgreSQL's URL as postgresql://USER:PASSWORD@VIP:5432/DB; the scripts carry a SCRAM verifier, never the password", () => {
    const lab = labAppModule("postgresql", { subnet: 7, password: "0123456789abcdef" });
    expect(lab.url("10.213.7.31")).toBe("postgresql://postgres:0123456789abcdef@10.213.7.31:5432/postgres");
    const spec = realServerSpec("postgresql", "mirror");
    const password = applicationPassword(secrets);
    expect(password).toMatch(/^[0-9a-f]{32}$/);
    expect(applicationPassword({ adminToken: `${secrets.adminToken}x` })).not.toBe(password);
    expect(applicationUrl(spec, secrets, "10.0.0.5")).toBe(`postgresql://postgres:${password}@10.0.0.5:5432/postgres`);
    for (const [mod, pw] of [[lab, "0123456789abcdef"], [applicationModule(spec, secrets), password]] as const) {
      const text = JSON.stringify(agentScripts(mod));
      expect(text).not.toContain(pw);
      expect(text).toMatch(/PASSWORD 'SCRAM-SHA-256\$4096:[A-Za-z0-9+/=]+\$[A-Za-z0-9+/=]+:[A-Za-z0-9+/=]+'/);
    }
  });

  it("makes SCRAM-SHA-256 verifiers that check RFC 7677's example exchange", () => {
    // RFC 7677 section 3: password "pencil"; the proof the client sent and the server's signature.
    const salt = Buffer.from("W22ZaJ0SNY7soEsUEjb6gQ==", "base64");
    const m = /^SCRAM-SHA-256\$4096:([^$]+)\$([^:]+):(.+)$/.exec(scramVerifier("pencil", salt));
    expect(m?.[1]).toBe("W22ZaJ0SNY7soEsUEjb6gQ==");
    const [storedKey, serverKey] = [Buffer.from(m?.[2] ?? "", "base64"), Buffer.from(m?.[3] ?? "", "base64")];
    const nonce = "rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0";
    const authMessage = `n=user,r=rOprNGfwEbeRWgbNEkqO,r=${nonce},s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096,c=biws,r=${nonce}`;
    const hmac = (key: Buffer) => crypto.createHmac("sha256", key).update(authMessage).digest();
    const proof = Buffer.from("dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=", "base64");
    const clientKey = Buffer.from(proof.map((b, i) => b ^ (hmac(storedKey)[i] ?? 0)));
    expect(crypto.createHash("sha256").update(clientKey).digest().equals(storedKey)).toBe(true);
    expect(hmac(serverKey).toString("base64")).toBe("6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=");
  });

  it("refuses a PostgreSQL role or database name the scripts could not quote, naming it", () => {
    const base = { dir: "/var/lib/postgresql", password: "0123456789abcdef", database: "app", clientCidrs: [] };
    expect(() => postgresqlModule({ ...base, user: "Robert'); drop" })).toThrow(/MF_APP_POSTGRESQL.*user "Robert'\); drop"/);
    expect(() => postgresqlModule({ ...base, user: "app", database: "1db" })).toThrow(/database "1db"/);
    expect(() => postgresqlModule({ ...base, user: "app", password: "short" })).toThrow(/at least 8/);
  });

  it("names the clash when a spec checker takes the module checker's name", () => {
    const spec = resolveSpec({ clusterName: "c", kind: "mirror", nodes: [{ name: "a" }, { name: "b" }], application: "postgresql", checkers: [{ name: "postgresql", type: "tcp", target: "5432" }] });
    expect(() => planCheckers(spec, applicationModule(spec, secrets))).toThrow(/MF_SPEC_INVALID.*"postgresql" is the name of the postgresql module's own checker/);
  });

  it("gives a spec without ports the port its module listens on when given none", () => {
    const own = {
      postgresql: postgresqlModule({ dir: "/d", user: "postgres", password: "0123456789abcdef", database: "postgres", clientCidrs: [] }),
      nginx: nginxModule({ conf: "/etc/nginx/nginx.conf", pidFile: "/run/nginx.pid" }),
      demo: demoModule(),
    };
    for (const [app, mod] of Object.entries(own)) {
      const spec = realServerSpec(app as ApplicationModule, "mirror");
      expect(spec.appPorts, app).toEqual(mod.ports);
      expect(applicationModule(spec, secrets).ports, app).toEqual(mod.ports);
    }
  });

  it("keeps the distro's unit away on a real server only (the lab's hosts share the machine's systemd)", () => {
    for (const app of ["postgresql", "nginx"] as const) {
      expect(applicationModule(realServerSpec(app, "mirror"), secrets).scripts.prestart?.text).toContain(`systemctl mask --now '${app}'`);
      expect(labAppModule(app, { subnet: 7, password: "0123456789abcdef" }).scripts.prestart).toBeUndefined();
    }
  });
});

// The start script as the agent runs it, with stand-ins for pg_ctl, initdb and psql that record
// their calls (runuser and chown to postgres need root).
describe.skipIf(!needsRoot("PostgreSQL module start script"))("PostgreSQL module start script", () => {
  let tmp: string;
  let calls: string;
  let mod: AppModule;
  const start = () => {
    const s = agentScripts(mod).start_prim;
    return spawnSync(s?.path ?? "", s?.args ?? [], { encoding: "utf8", timeout: 30_000 });
  };
  const recorded = () => fs.readFileSync(calls, "utf8");

  beforeEach(() => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), "mf-pgmodule-"));
    fs.chmodSync(tmp, 0o755);
    calls = path.join(tmp, "calls");
    fs.writeFileSync(calls, "", { mode: 0o666 });
    fs.chmodSync(calls, 0o666);
    const bin = path.join(tmp, "bin");
    fs.mkdirSync(bin, { mode: 0o755 });
    const stub = (name: string, body: string) => fs.writeFileSync(path.join(bin, name), `#!/bin/sh\necho "${name} $*" >> ${calls}\n${body}`, { mode: 0o755 });
    stub("pg_ctl", `[ "$1" = status ] && exit 3\nexit 0\n`);
    stub("initdb", `echo 15 > "$2/PG_VERSION"\necho "# made by initdb" > "$2/pg_hba.conf"\n`);
    stub("psql", `cat >> ${calls}\n`);
    mod = postgresqlModule({ dir: path.join(tmp, "replicated"), user: "app", password: "0123456789abcdef", database: "shop", clientCidrs: ["10.9.0.0/16"], binDir: bin, logFile: path.join(tmp, "log", "pg.log") });
  });

  afterEach(() => {
    fs.rmSync(tmp, { recursive: true, force: true });
  });

  it("initialises an empty data directory once, with password authentication for the client networks", () => {
    const first = start();
    expect(first.status, first.stderr).toBe(0);
    const pgdata = path.join(tmp, "replicated", "data");
    expect(recorded()).toContain(`initdb -D ${pgdata} -U postgres --auth-local=peer --auth-host=scram-sha-256`);
    expect(fs.statSync(pgdata).mode & 0o777).toBe(0o700);
    const hba = fs.readFileSync(path.join(pgdata, "pg_hba.conf"), "utf8");
    expect(hba).toContain("host all all 10.9.0.0/16 scram-sha-256");
    expect(hba).not.toMatch(/trust/);
    expect(recorded()).toMatch(/pg_ctl start -D \S+ -w .*-o -c listen_addresses=\* -c port=5432/);
    expect(recorded()).toContain(`SELECT 'CREATE ROLE "app" LOGIN'`);
    expect(recorded()).toContain(`SELECT 'CREATE DATABASE "shop" OWNER "app"'`);

    // A second start (the cluster exists) does not initialise again and leaves pg_hba.conf alone.
    fs.appendFileSync(path.join(pgdata, "pg_hba.conf"), "# edited by the DBA\n");
    fs.writeFileSync(calls, "");
    const second = start();
    expect(second.status, second.stderr).toBe(0);
    expect(recorded()).not.toContain("initdb");
    expect(recorded()).toContain("pg_ctl start");
    expect(fs.readFileSync(path.join(pgdata, "pg_hba.conf"), "utf8")).toContain("# edited by the DBA");
  });

  it("refuses to initialise a data directory holding files that are not a cluster", () => {
    const pgdata = path.join(tmp, "replicated", "data");
    fs.mkdirSync(pgdata, { recursive: true });
    fs.writeFileSync(path.join(pgdata, "precious.txt"), "keep me");
    const r = start();
    expect(r.status).not.toBe(0);
    expect(r.stderr).toContain(`${pgdata} holds files but no PostgreSQL cluster`);
    expect(recorded()).not.toContain("initdb");
    expect(recorded()).not.toContain("pg_ctl start");
    expect(fs.readFileSync(path.join(pgdata, "precious.txt"), "utf8")).toBe("keep me");
  });
});
