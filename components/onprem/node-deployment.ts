/**
 * One node's agent on an existing server, as a Pulumi dynamic resource whose provider calls the
 * on-prem deployer over SSH. `diff` compares the sha256 of the bundle and of the config, so
 * `pulumi up` touches only the nodes whose bundle or config changed; moving a node to another
 * host replaces it (uninstall on the old host after install on the new one).
 */
import { existsSync } from "node:fs";
import * as path from "node:path";
import * as pulumi from "@pulumi/pulumi";
import { packageRoot } from "../common/bundle";
import type * as Deployer from "./deployer";

export interface NodeTarget {
  readonly host: string;
  readonly port?: number;
  readonly user: string;
  readonly privateKey: string;
  /** Pinned host key, "SHA256:<base64>". */
  readonly hostKey: string;
}

/** What the provider stores and compares (plain values, as the engine hands them over). */
export interface NodeDeploymentProps {
  readonly target: NodeTarget;
  readonly node: string;
  readonly serviceMode: "systemd" | "supervised";
  /** Path of the agent bundle on the machine running `pulumi up`. */
  readonly bundlePath: string;
  readonly bundleSha256: string;
  /** The node's config text (secret). */
  readonly config: string;
  readonly configSha256: string;
}

export interface NodeDeploymentArgs {
  readonly target: pulumi.Input<NodeTarget>;
  readonly node: string;
  readonly serviceMode: "systemd" | "supervised";
  readonly bundlePath: string;
  readonly bundleSha256: string;
  readonly config: pulumi.Input<string>;
  readonly configSha256: pulumi.Input<string>;
}

type DeployerApi = Pick<typeof Deployer, "install" | "start" | "stop" | "uninstall">;

/** Identity of the place an agent runs: changing it means a new node, not an update. */
const placement = (p: NodeDeploymentProps) => `${p.target.user}@${p.target.host}:${p.target.port ?? 22}/${p.node}`;

/**
 * The provider, over any deployer (the real one over SSH, or a fake in tests). `readBundle` is
 * injected for the same reason. Everything it uses comes in through these two functions, so the
 * engine can serialise it.
 */
export function nodeDeploymentProvider(loadDeployer: () => DeployerApi, readBundle: (file: string) => string): pulumi.dynamic.ResourceProvider<NodeDeploymentProps, NodeDeploymentProps> {
  const artifact = (p: NodeDeploymentProps) => ({ node: p.node, bundle: readBundle(p.bundlePath), config: p.config, serviceMode: p.serviceMode });
  const target = (p: NodeDeploymentProps) => ({ ...p.target });
  return {
    async create(inputs) {
      const d = loadDeployer();
      await d.install(target(inputs), artifact(inputs));
      await d.start(target(inputs), inputs.node);
      return { id: placement(inputs), outs: inputs };
    },
    async diff(_id, olds, news) {
      const replaces = placement(olds) !== placement(news) ? ["target"] : [];
      const changed = replaces.length > 0 || olds.bundleSha256 !== news.bundleSha256 || olds.configSha256 !== news.configSha256 ||
        olds.serviceMode !== news.serviceMode || olds.target.hostKey !== news.target.hostKey || olds.target.privateKey !== news.target.privateKey;
      return { changes: changed, replaces, deleteBeforeReplace: false };
    },
    async update(_id, olds, news) {
      const d = loadDeployer();
      const { changed } = await d.install(target(news), artifact(news));
      // A new bundle or config takes effect only after a restart; nothing changed, nothing restarts.
      if (changed.length > 0 || olds.serviceMode !== news.serviceMode) {
        await d.stop(target(news), news.node);
        await d.start(target(news), news.node);
      }
      return { outs: news };
    },
    async delete(_id, props) {
      await loadDeployer().uninstall(target(props), props.node);
    },
  };
}

/**
 * The deployer module's path, resolved now so the serialised provider finds it from anywhere:
 * beside this file (sources, or a compiled tree), else a built dist/deployer.js, else the sources
 * under the package root (a bundled dist/index.js has no deployer directory beside it).
 */
const deployerModule = ((): string => {
  const root = packageRoot();
  const candidates = [path.join(__dirname, "deployer"), path.join(root, "dist", "deployer.js"), path.join(root, "components", "onprem", "deployer")];
  const exists = (p: string) => existsSync(p) || existsSync(path.join(p, "index.ts")) || existsSync(path.join(p, "index.js"));
  return candidates.find(exists) ?? candidates[0]!;
})();
/** tsx's loader, when installed: lets the provider host (plain Node) load the TypeScript deployer. */
const tsxLoader = (() => {
  try {
    return require.resolve("tsx/cjs/api");
  } catch {
    return undefined;
  }
})();

/** Loads the real deployer; in a TypeScript checkout it registers tsx first (the provider host runs plain Node). */
export function loadRealDeployer(): DeployerApi {
  const req = require;
  try {
    return req(deployerModule) as DeployerApi;
  } catch (e) {
    if ((e as { code?: string }).code !== "MODULE_NOT_FOUND" || tsxLoader === undefined) throw e;
    (req(tsxLoader) as { register(): void }).register();
    return req(deployerModule) as DeployerApi;
  }
}

function readBundleFile(file: string): string {
  // A require inside the function, not an import: the engine serialises this function's text.
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  return (require("node:fs") as typeof import("node:fs")).readFileSync(file, "utf8");
}

export class NodeDeployment extends pulumi.dynamic.Resource {
  declare readonly configSha256: pulumi.Output<string>;
  declare readonly bundleSha256: pulumi.Output<string>;

  constructor(name: string, args: NodeDeploymentArgs, opts?: pulumi.CustomResourceOptions) {
    super(nodeDeploymentProvider(loadRealDeployer, readBundleFile), name, { ...args, configSha256: args.configSha256, bundleSha256: args.bundleSha256 }, {
      ...opts,
      additionalSecretOutputs: ["config", "target"],
    }, "mirrorfarm", "NodeDeployment");
  }
}
